// The workshops pages' own script (console.js holds what pages share): scanning the QR code of
// a chat confirmation with the camera, where the browser can read QR codes (BarcodeDetector);
// elsewhere the code is typed, or a phone's camera app opens /admin/checkin?code=... itself.
"use strict";

(() => {
  const form = document.getElementById("checkin-code");
  const button = document.getElementById("scan-button");
  const video = document.getElementById("scan-video");
  const hint = document.getElementById("scan-hint");
  if (!form || !button || !video || !("BarcodeDetector" in window) ||
      !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return;

  // The QR code holds the code itself, or the console's address with ?code=.
  const codeOf = (text) => {
    try {
      const url = new URL(text, window.location.href);
      const code = url.searchParams.get("code");
      if (code) return code;
    } catch (error) {
      // not an address: the code itself
    }
    return text.trim();
  };

  let stream = null;
  const stop = () => {
    if (stream) stream.getTracks().forEach((track) => track.stop());
    stream = null;
    video.hidden = true;
    hint.hidden = true;
  };

  button.hidden = false;
  button.addEventListener("click", async () => {
    if (stream) { stop(); return; }
    let detector;
    try {
      detector = new window.BarcodeDetector({formats: ["qr_code"]});
      stream = await navigator.mediaDevices.getUserMedia({video: {facingMode: "environment"}});
    } catch (error) {
      stop();
      button.hidden = true;  // no camera, or refused: typing only
      return;
    }
    video.srcObject = stream;
    video.hidden = false;
    hint.hidden = false;
    await video.play();
    const look = async () => {
      if (!stream) return;
      try {
        const found = await detector.detect(video);
        if (found.length) {
          form.elements.namedItem("code").value = codeOf(found[0].rawValue);
          stop();
          form.requestSubmit();
          return;
        }
      } catch (error) {
        // a frame not ready yet: try the next one
      }
      window.setTimeout(look, 250);
    };
    look();
  });
  window.addEventListener("pagehide", stop);
})();
