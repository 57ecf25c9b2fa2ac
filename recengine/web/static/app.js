// The page: login, a hash router over the views, the map and the player.

import * as api from "./api.js";
import { LibraryMap } from "./map.js";
import { Player } from "./player.js";
import { Views } from "./views.js";

const $ = (id) => document.getElementById(id);
const VIEWS = ["search", "track", "foryou", "playlists", "map", "status"];

function showError(e) {
  if (e && e.status === 401) return showLogin();
  $("error").textContent = e ? `${e.message || e}` : "";
}

function showLogin() {
  $("login").hidden = false;
  for (const id of ["nav", "user-box", "logout", "player"]) $(id).hidden = true;
  for (const v of VIEWS) $(`view-${v}`).hidden = true;
}

const user = () => $("user").value.trim() || "default";
const player = new Player($("audio"), $("now-playing"), user);
const views = new Views(player, user, showError);
let mapData = null;
const libraryMap = new LibraryMap($("map"), $("map-tip"), {
  onOpen: (id) => { location.hash = `#/track/${id}`; },
  describe: (i) => {
    const d = mapData;
    return [d.artists[d.artist[i]] || "(no artist)", d.albums[d.album[i]], d.folders[d.folder[i]] || "/"]
      .filter(Boolean).join(" · ");
  },
});
$("map-colour").addEventListener("change", (e) => libraryMap.setColour(e.target.value));

async function showMap() {
  if (!mapData) {
    $("map-summary").textContent = "loading…";
    mapData = await api.get("/api/v1/map");
  }
  $("map-summary").textContent = `${mapData.count} tracks`;
  libraryMap.setData(mapData);
}

async function route() {
  const [path, q] = location.hash.replace(/^#\/?/, "").split("?");
  const [name, arg] = path.split("/");
  const view = VIEWS.includes(name) ? name : name === "playlist" ? "playlists" : "search";
  for (const v of VIEWS) $(`view-${v}`).hidden = v !== view;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.view === view);
  showError(null);
  try {
    if (view === "search") await views.search(new URLSearchParams(q || "").get("q") || "");
    else if (view === "track") await views.track(decodeURIComponent(arg || ""));
    else if (view === "foryou") await views.forYou();
    else if (view === "playlists") await views.playlists(name === "playlist" ? decodeURIComponent(arg || "") : null);
    else if (view === "map") await showMap();
    else if (view === "status") await views.status();
  } catch (e) { showError(e); }
}

async function start() {
  $("login").hidden = true;
  for (const id of ["nav", "user-box", "logout", "player"]) $(id).hidden = false;
  await route();
}

$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    await api.login($("token").value.trim());
    $("token").value = "";
    $("login-error").textContent = "";
    await start();
  } catch (err) { $("login-error").textContent = err.message; }
});
$("logout").addEventListener("click", async () => { await api.logout().catch(() => {}); showLogin(); });
window.addEventListener("hashchange", () => { if ($("login").hidden) route(); });

api.resume().then((ok) => (ok ? start() : showLogin())).catch(showError);
