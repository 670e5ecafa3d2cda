// The web client: routes by path (/, /explore, /u/<username>) in one page, and talks to the
// JSON API only (api.js). Pages are built from the <template>s of index.html.
"use strict";

import { TOKENS, api, tokens } from "./api.js";
import { showRequests } from "./requests.js";
import { byCursor, byPage, clone, postList, say, sayError } from "./views.js";

const PAGES = [
  [/^\/$/, home],
  [/^\/explore$/, explore],
  [/^\/u\/([A-Za-z0-9_]{3,30})$/, profile],
];
const PAGE_SIZE = 20;

// What is known about the signed-in person; forgotten on sign-in and sign-out.
let session = {};

/** Liked posts, remembered per user in this browser: posts carry counts, not who liked them. */
class Likes {
  constructor(userId) {
    this.key = `feedapp.likes.${userId}`;
    try {
      this.ids = new Set(JSON.parse(localStorage.getItem(this.key)) || []);
    } catch {
      this.ids = new Set();  // unreadable: start again
    }
  }

  has(postId) {
    return this.ids.has(postId);
  }

  set(postId, liked) {
    this.ids.delete(postId);
    if (liked) this.ids.add(postId);
    localStorage.setItem(this.key, JSON.stringify([...this.ids].slice(-1000)));
  }
}

async function currentUser() {
  if (!tokens.get()) return null;
  if (!session.me) {
    const me = await api("GET", "/api/me", { auth: true });
    session = { me, likes: new Likes(me.id) };
  }
  return session.me;
}

/** Ids of whom the signed-in person follows (read once per session, then kept up to date). */
function following() {
  session.following ??= (async () => {
    const ids = new Set();
    let url = `/api/users/${session.me.id}/following?limit=100`;
    while (url) {
      const body = await api("GET", url);
      for (const user of body.items) ids.add(user.id);
      url = byCursor(body, url);
    }
    return ids;
  })().catch((err) => {
    session.following = null;
    throw err;
  });
  return session.following;
}

function endSession(message) {
  tokens.clear();
  session = {};
  navigate("/").then(() => say(message));
}

/** What a failed request means to the person: a message, or the sign-in form once the
 * session is over (the refresh token was refused too). */
function fail(err, action, element = null) {
  if (err.status === 401 && err.authenticated) endSession("Your session has ended. Please sign in again.");
  else sayError(err, action, element);
}

// --- pages ----------------------------------------------------------------------------------

async function home(page) {
  const me = await currentUser();
  if (!me) {
    signInForms(page);
    return;
  }
  const compose = clone("t-compose");
  const feed = postList({
    title: "Your feed", first: `/api/feed?limit=${PAGE_SIZE}`, next: byCursor, auth: true,
    empty: "Nothing here yet. Follow people from Explore or their profiles, and their posts show up here.",
    likes: session.likes, onFailure: fail,
  });
  page.append(compose, feed.view);
  const content = compose.elements.content;
  const count = compose.querySelector("#compose-count");
  content.addEventListener("input", () => {
    count.textContent = `${content.value.length} / 500`;
    delete compose.dataset.key;  // other text: another post, so another key
  });
  onSubmit(compose, "Posting", async ({ content: text }, error) => {
    if (!text.trim()) {
      say("Write something first.", error);
      return;
    }
    // One key per post being written: sending the same text again (after a lost answer)
    // gets the first answer back instead of a second post.
    compose.dataset.key ||= idempotencyKey();
    const post = await api("POST", "/api/posts", {
      body: { content: text }, auth: true, headers: { "Idempotency-Key": compose.dataset.key },
    });
    feed.prepend(post);
    compose.reset();
    delete compose.dataset.key;
    count.textContent = "0 / 500";
  });
}

function signInForms(page) {
  const view = clone("t-sign-in");
  onSubmit(view.querySelector("[data-testid=login]"), "Signing in", ({ username, password }) => signIn(username, password));
  onSubmit(view.querySelector("[data-testid=register]"), "Signing up", async ({ username, email, password, display_name }) => {
    const body = { username, email, password };
    if (display_name.trim()) body.display_name = display_name.trim();
    await api("POST", "/api/auth/register", { body });
    await signIn(username, password);
  });
  page.append(view);
}

async function signIn(username, password) {
  tokens.set(await api("POST", "/api/auth/login", { body: { username, password } }));
  session = {};
  await render({ focus: true });
}

async function profile(page, username) {
  const me = await currentUser();
  let user;
  try {
    user = await api("GET", `/api/users/by-username/${username}`);
  } catch (err) {
    if (err.status !== 404) throw err;
    const heading = document.createElement("h1");
    heading.textContent = `There is no user @${username}.`;
    page.append(heading);
    return;
  }
  const card = clone("t-profile");
  showProfile(card, user);
  const posts = postList({
    title: `Posts by ${user.display_name || user.username}`, first: `/api/users/${user.id}/posts?limit=${PAGE_SIZE}`,
    next: byCursor, empty: "No posts yet.", likes: session.likes, onFailure: fail,
  });
  page.append(card, posts.view);
  if (!me) card.querySelector(".hint").hidden = false;
  else if (me.id !== user.id) await showFollow(card, user);
}

function showProfile(card, user) {
  card.querySelector(".name").textContent = user.display_name || user.username;
  card.querySelector(".handle").textContent = `@${user.username}`;
  card.querySelector(".bio").textContent = user.bio || "";
  for (const count of card.querySelectorAll("[data-count]")) {
    count.textContent = Number(user[count.dataset.count]).toLocaleString("en-US");
  }
}

async function showFollow(card, user) {
  const button = card.querySelector("[data-testid=follow]");
  const error = card.querySelector(".form-error");
  const show = (on) => {
    button.setAttribute("aria-pressed", String(on));
    button.textContent = on ? "Unfollow" : "Follow";
  };
  show((await following()).has(user.id));
  button.hidden = false;
  button.addEventListener("click", async () => {
    const on = button.getAttribute("aria-pressed") === "true";
    button.disabled = true;
    say("", error);
    try {
      const result = await api(on ? "DELETE" : "POST", `/api/users/${user.id}/follow`, { auth: true });
      (await following())[result.following ? "add" : "delete"](user.id);
      show(result.following);
      showProfile(card, await api("GET", `/api/users/${user.id}`));
    } catch (err) {
      fail(err, on ? "Unfollowing" : "Following", error);
    } finally {
      button.disabled = false;
    }
  });
}

async function explore(page) {
  await currentUser();  // for the like buttons
  const form = clone("t-explore");
  const params = new URLSearchParams(location.search);
  const q = (params.get("q") || "").trim();
  const sort = params.get("sort") === "popular" ? "popular" : "recent";
  form.elements.q.value = q;
  form.elements.sort.value = sort;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const wanted = new URLSearchParams({ q: form.elements.q.value.trim(), sort: form.elements.sort.value });
    if (!wanted.get("q")) wanted.delete("q");
    navigate(`/explore?${wanted}`, { focus: true });
  });
  const query = new URLSearchParams({ sort, page: "1", page_size: String(PAGE_SIZE) });
  if (q) query.set("q", q);
  const title = q ? `Posts with “${q}”` : sort === "popular" ? "Most liked posts" : "Newest posts";
  const list = postList({
    title, first: `/api/posts?${query}`, next: byPage, empty: "No posts match.", likes: session.likes, onFailure: fail,
  });
  page.append(form, list.view);
}

// --- forms, navigation, the header ----------------------------------------------------------

/** On submit: `handler(fields, errorLine)` with the button disabled, its failure shown in the form. */
function onSubmit(form, action, handler) {
  const error = form.querySelector(".form-error");
  const button = form.querySelector("[type=submit]");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    say("", error);
    try {
      await handler(Object.fromEntries(new FormData(form)), error);
    } catch (err) {
      fail(err, action, error);
    } finally {
      button.disabled = false;
    }
  });
}

function idempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // Pages served over plain HTTP to another host are no secure context: no randomUUID there.
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

function navigate(path, { focus = true } = {}) {
  history.pushState(null, "", path);
  return render({ focus });
}

async function render({ focus = false } = {}) {
  say("");
  const main = document.getElementById("main");
  const page = document.createElement("div");
  page.className = "page";
  main.replaceChildren(page);
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === location.pathname) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const [pattern, show] = PAGES.find(([p]) => p.test(location.pathname)) || [];
  try {
    if (show) await show(page, ...location.pathname.match(pattern).slice(1));
  } catch (err) {
    fail(err, "Loading the page");
  }
  showHeader();
  if (focus) main.focus();
}

function showHeader() {
  const me = session.me;
  const link = document.getElementById("my-profile");
  link.hidden = !me;
  if (me) link.href = `/u/${encodeURIComponent(me.username)}`;
  document.querySelector("[data-testid=signout]").hidden = !me;
}

function followLinks(event) {
  const link = event.target.closest("a[href]");
  if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const url = new URL(link.href);
  if (url.origin !== location.origin || !PAGES.some(([p]) => p.test(url.pathname))) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
}

async function signOut() {
  try {
    await api("POST", "/api/auth/logout", { auth: true });
  } catch (err) {
    if (err.status !== 401) {
      sayError(err, "Signing out");  // still signed in: the person can try again
      return;
    }
  }
  endSession("You are signed out.");
}

showRequests();
document.addEventListener("click", followLinks);
document.querySelector("[data-testid=signout]").addEventListener("click", signOut);
document.querySelector("#notice button").addEventListener("click", () => say(""));
window.addEventListener("popstate", () => render());
window.addEventListener("storage", (event) => {
  if (event.key === TOKENS && (event.oldValue === null) !== (event.newValue === null)) {  // signed in or out in another tab
    session = {};
    render();
  }
});
render();
