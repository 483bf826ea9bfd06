// The account page: cookie mode only. Tokens live in HttpOnly cookies the
// page cannot read; it sends the readable csrf_token back as X-CSRF-Token.
"use strict";

const $ = (id) => document.getElementById(id);

function csrf() {
  const match = document.cookie.match(/(?:^|;\s*)csrf_token=([^;]*)/);
  return match ? decodeURIComponent(match[1]) : "";
}

function say(text, isError) {
  $("message").textContent = text;
  $("message").className = isError ? "error" : "";
}

async function call(method, path, body, retried) {
  const headers = { "X-CSRF-Token": csrf() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401 && !retried) {
    const error = await response.clone().json().catch(() => ({}));
    if (error.code === "token_expired") {
      const refreshed = await fetch("/api/auth/refresh?mode=cookie", {
        method: "POST", headers: { "X-CSRF-Token": csrf() }, credentials: "same-origin",
      });
      if (refreshed.ok) return call(method, path, body, true);
    }
  }
  return response;
}

async function failure(response) {
  const error = await response.json().catch(() => ({ error: response.statusText }));
  say(error.error || "Something went wrong", true);
}

function show(section) {
  for (const id of ["signed-out", "signed-in"]) $(id).hidden = id !== section;
}

async function refreshView() {
  const me = await call("GET", "/api/auth/me");
  if (!me.ok) {
    show("signed-out");
    return;
  }
  const user = await me.json();
  $("me-name").textContent = user.name;
  $("me-email").textContent = user.email;
  const sessions = await call("GET", "/api/auth/sessions");
  const rows = $("sessions");
  rows.replaceChildren();
  if (sessions.ok) {
    for (const s of await sessions.json()) {
      const row = document.createElement("tr");
      if (s.current) row.className = "current";
      const device = s.device_name || s.user_agent || "unknown device";
      for (const text of [device + (s.current ? " (this device)" : ""), s.ip || "", new Date(s.last_used_at).toLocaleString()]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.append(cell);
      }
      const cell = document.createElement("td");
      const end = document.createElement("button");
      end.type = "button";
      end.textContent = s.current ? "Sign out" : "End";
      end.className = "end-session";
      end.addEventListener("click", async () => {
        const done = await call("DELETE", "/api/auth/sessions/" + encodeURIComponent(s.id));
        if (!done.ok) return failure(done);
        say(s.current ? "Signed out." : "Session ended.");
        refreshView();
      });
      cell.append(end);
      row.append(cell);
      rows.append(row);
    }
  }
  show("signed-in");
}

function onSubmit(id, handler) {
  $(id).addEventListener("submit", async (event) => {
    event.preventDefault();
    await handler();
  });
}

onSubmit("login-form", async () => {
  const response = await call("POST", "/api/auth/login?mode=cookie", {
    email: $("login-email").value, password: $("login-password").value, device_name: "Account page",
  });
  if (!response.ok) return failure(response);
  $("login-form").reset();
  say("Signed in.");
  refreshView();
});

onSubmit("register-form", async () => {
  const response = await call("POST", "/api/auth/register?mode=cookie", {
    name: $("register-name").value, email: $("register-email").value, password: $("register-password").value,
  });
  if (!response.ok) return failure(response);
  $("register-form").reset();
  say("Welcome! Check your mail to confirm your address.");
  refreshView();
});

onSubmit("forgot-form", async () => {
  const response = await call("POST", "/api/auth/password/forgot", { email: $("forgot-email").value });
  if (!response.ok) return failure(response);
  say("If the address has an account, a reset link is on its way.");
});

onSubmit("password-form", async () => {
  const response = await call("POST", "/api/auth/password", {
    current_password: $("current-password").value, new_password: $("new-password").value,
  });
  if (!response.ok) return failure(response);
  $("password-form").reset();
  say("Password changed. Your other sessions were signed out.");
  refreshView();
});

$("sign-out").addEventListener("click", async () => {
  await call("POST", "/api/auth/logout");
  say("Signed out.");
  show("signed-out");
});

$("end-all").addEventListener("click", async () => {
  const response = await call("POST", "/api/auth/logout-all");
  if (!response.ok) return failure(response);
  await call("POST", "/api/auth/logout");
  say("Signed out everywhere.");
  show("signed-out");
});

// Mail links carry their token in the fragment, which never reaches a
// server; opening the page consumes nothing until the user acts.
function handleLink() {
  const match = location.hash.match(/^#(reset|verify|email)=([A-Za-z0-9_-]+)$/);
  if (!match) return;
  const [, kind, token] = match;
  history.replaceState(null, "", location.pathname);
  $("link").hidden = false;
  if (kind === "reset") {
    $("link-title").textContent = "Choose a new password";
    $("reset-form").hidden = false;
    $("confirm-link").hidden = true;
    $("reset-form").onsubmit = async (event) => {
      event.preventDefault();
      const response = await call("POST", "/api/auth/password/reset", { token, new_password: $("reset-password").value });
      if (!response.ok) return failure(response);
      $("link").hidden = true;
      say("Password set. Sign in with it.");
      show("signed-out");
    };
  } else {
    const path = kind === "verify" ? "/api/auth/email/verify" : "/api/auth/email/confirm";
    $("link-title").textContent = kind === "verify" ? "Confirm your e-mail address" : "Confirm your new e-mail address";
    $("confirm-link").hidden = false;
    $("reset-form").hidden = true;
    $("confirm-link").onclick = async () => {
      const response = await call("POST", path, { token });
      if (!response.ok) return failure(response);
      $("link").hidden = true;
      say("Address confirmed.");
      refreshView();
    };
  }
}

// A link opened while the page is already open changes only the fragment.
window.addEventListener("hashchange", handleLink);
handleLink();
refreshView();
