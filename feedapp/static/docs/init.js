// Swagger UI over this deployment's OpenAPI document. "Try it out" sends requests to the same
// origin; after "Authorize" (an access token from POST /api/auth/login) it sends the bearer
// token with every operation that declares the bearer scheme.
"use strict";

window.ui = SwaggerUIBundle({
  url: "/api/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,  // the default sends the document to a third-party validator
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
