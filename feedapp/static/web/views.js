// The parts of a page: posts with their like buttons, lists that page on with "more", and
// the messages a failed request leaves. Everything user-written goes in as textContent.
"use strict";

import { api } from "./api.js";
import { ago, describe } from "./messages.js";

/** A fresh copy of the markup in <template id=...>. */
export function clone(id) {
  return document.getElementById(id).content.firstElementChild.cloneNode(true);
}

/** Show `text` in `element` (a form's error line, or the page's notice when none). */
export function say(text, element = null) {
  if (element) {
    element.textContent = text;
    return;
  }
  const notice = document.getElementById("notice");
  notice.querySelector("p").textContent = text;
  notice.hidden = !text;
}

/** A post as an <article>; `likes` is the signed-in reader's set of liked posts (or null). */
export function postView(post, likes, onFailure) {
  const view = clone("t-post");
  view.dataset.postId = post.id;
  const author = view.querySelector(".author");
  author.href = `/u/${encodeURIComponent(post.author.username)}`;
  author.querySelector(".name").textContent = post.author.display_name || post.author.username;
  author.querySelector(".handle").textContent = `@${post.author.username}`;
  const time = view.querySelector("time");
  time.dateTime = post.created_at;
  time.textContent = ago(post.created_at);
  time.title = new Date(post.created_at).toLocaleString();
  view.querySelector(".content").textContent = post.content;
  const like = view.querySelector("[data-testid=like]");
  showLike(like, likes?.has(post.id) ?? false, post.likes_count);
  like.addEventListener("click", () => toggleLike(like, post.id, likes, onFailure));
  return view;
}

function showLike(button, liked, count) {
  button.setAttribute("aria-pressed", String(liked));
  button.dataset.count = String(count);
  button.textContent = `${liked ? "♥" : "♡"} ${count}`;
  button.setAttribute("aria-label", `${liked ? "Unlike" : "Like"} (${count} ${count === 1 ? "like" : "likes"})`);
}

async function toggleLike(button, postId, likes, onFailure) {
  if (!likes) {
    say("Sign in to like posts.");
    return;
  }
  const liked = button.getAttribute("aria-pressed") === "true";
  button.disabled = true;
  try {
    const result = await api(liked ? "DELETE" : "POST", `/api/posts/${postId}/like`, { auth: true });
    likes.set(postId, result.liked);
    showLike(button, result.liked, result.likes_count);
  } catch (err) {
    onFailure(err, "Liking");
  } finally {
    button.disabled = false;
  }
}

/**
 * A titled list of posts that loads `first` and then, on "more", whatever `next(body, url)`
 * names (null: the end). A post already shown is not shown again.
 */
export function postList({ title, first, next, auth = false, empty, likes, onFailure }) {
  const view = clone("t-list");
  view.querySelector("h2").textContent = title;
  const posts = view.querySelector("[data-testid=feed]");
  posts.setAttribute("aria-label", title);
  const more = view.querySelector("[data-testid=more]");
  const emptyNote = view.querySelector(".empty");
  const shown = new Set();
  let url = first;

  async function load() {
    more.disabled = true;
    more.textContent = "Loading…";
    try {
      const body = await api("GET", url, { auth });
      const added = body.items.filter((post) => !shown.has(post.id));
      for (const post of added) {
        shown.add(post.id);
        posts.append(postView(post, likes, onFailure));
      }
      url = next(body, url);
      emptyNote.textContent = empty;
      emptyNote.hidden = shown.size > 0;
      if (!url && document.activeElement === more && added.length) posts.lastElementChild.focus();
      more.hidden = !url;
    } catch (err) {
      onFailure(err, "Loading posts");
    } finally {
      more.disabled = false;
      more.textContent = "More";
    }
  }

  more.addEventListener("click", load);
  const loaded = load();
  return {
    view,
    loaded,
    /** Put a post just written at the top. */
    prepend(post) {
      shown.add(post.id);
      posts.prepend(postView(post, likes, onFailure));
      emptyNote.hidden = true;
    },
  };
}

/** next() of a cursor-paginated list: its next_cursor as ?before=. */
export function byCursor(body, url) {
  if (!body.next_cursor) return null;
  const next = new URL(url, location.origin);
  next.searchParams.set("before", body.next_cursor);
  return next.pathname + next.search;
}

/** next() of the explore listing: the following page while there are more posts. */
export function byPage(body, url) {
  if (body.page * body.page_size >= body.total) return null;
  const next = new URL(url, location.origin);
  next.searchParams.set("page", String(body.page + 1));
  return next.pathname + next.search;
}

/** The readable message for `err` in `element` (or the page's notice). */
export function sayError(err, action, element = null) {
  say(describe(err, action), element);
}
