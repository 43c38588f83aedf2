// The review page: the recording and the transcript move together. Anything with
// data-at-ms seeks the player there; the turn being played is highlighted; the camera video
// (browser calls) follows the player.
(() => {
  const player = document.getElementById("player");
  if (!player) return;
  const camera = document.getElementById("camera");
  const turns = [...document.querySelectorAll(".turn[data-at-ms]")];

  const seek = (ms) => {
    player.currentTime = ms / 1000;
    player.play().catch(() => {}); // autoplay may be refused; the position is set anyway
  };
  document.addEventListener("click", (event) => {
    const target = event.target.closest("[data-at-ms]");
    if (target) seek(Number(target.dataset.atMs));
  });
  document.addEventListener("keydown", (event) => {
    const target = event.target.closest(".turn[data-at-ms]");
    if (target && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      seek(Number(target.dataset.atMs));
    }
  });

  // A link from elsewhere (the compare page) may name a moment: #t=MILLISECONDS.
  const linked = /^#t=(\d+)$/.exec(location.hash);
  if (linked) player.currentTime = Number(linked[1]) / 1000;

  let playing = null;
  player.addEventListener("timeupdate", () => {
    const ms = player.currentTime * 1000;
    let current = null;
    for (const turn of turns) {
      if (Number(turn.dataset.atMs) <= ms) current = turn;
      else break;
    }
    if (current === playing) return;
    playing?.classList.remove("playing");
    current?.classList.add("playing");
    current?.scrollIntoView({ block: "nearest", behavior: "smooth" });
    playing = current;
  });

  if (camera) {
    const follow = () => {
      if (Math.abs(camera.currentTime - player.currentTime) > 0.3) camera.currentTime = player.currentTime;
    };
    player.addEventListener("play", () => { follow(); camera.play().catch(() => {}); });
    player.addEventListener("pause", () => camera.pause());
    player.addEventListener("seeked", follow);
  }
})();
