// Reads the frame counter that an edge with web.latency_stamps writes into its frames
// (orstream.edge.web.frame_stamp: two rows of black/white cells) off every frame the <video>
// presents, with the time the frame is due on screen: the browser's half of a glass-to-glass
// measurement. `orstream bench dashboard` adds it to the page; the dashboard never loads it.
"use strict";

window.frameStampReader = (() => {
  const video = document.getElementById("video");
  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d", { willReadFrequently: true });
  let box = null;
  let reads = [];

  // One cell's mean level (R+G+B)/3 over its centre half: the edges are where the encoder's
  // blocks smear black into white.
  function level(pixels, width, x0, y0, size) {
    let sum = 0;
    for (let y = y0; y < y0 + size; y++) {
      for (let x = x0; x < x0 + size; x++) {
        const i = 4 * (y * width + x);
        sum += pixels[i] + pixels[i + 1] + pixels[i + 2];
      }
    }
    return sum / (3 * size * size);
  }

  // The counter, or null when the code does not read cleanly (as frame_stamp.read_stamp).
  function decode(pixels) {
    const columns = box.bits + 2;
    const cell = box.cell;
    const inset = Math.floor(cell / 4);
    const size = cell - 2 * inset;
    const at = (row, column) =>
      level(pixels, columns * cell, column * cell + inset, row * cell + inset, size);
    const black = (at(0, 0) + at(1, 1)) / 2;
    const white = (at(0, 1) + at(1, 0)) / 2;
    if (white - black < 64) return null;
    const threshold = (black + white) / 2;
    let counter = 0;
    for (let column = 2; column < columns; column++) {
      const one = at(0, column) > threshold;
      if (one === at(1, column) > threshold) return null;
      counter = counter * 2 + (one ? 1 : 0);
    }
    return counter;
  }

  function onFrame(now, metadata) {
    if (!box) return;
    const width = (box.bits + 2) * box.cell;
    const height = 2 * box.cell;
    context.drawImage(video, box.x, box.y, width, height, 0, 0, width, height);
    const counter = decode(context.getImageData(0, 0, width, height).data);
    reads.push([
      counter,
      performance.timeOrigin + metadata.expectedDisplayTime,
      metadata.receiveTime === undefined ? null : performance.timeOrigin + metadata.receiveTime,
      metadata.presentedFrames,
    ]);
    video.requestVideoFrameCallback(onFrame);
  }

  return {
    // Begin reading with the code's place in the video's frames ({x, y, cell, bits}).
    start(stampBox) {
      box = stampBox;
      canvas.width = (box.bits + 2) * box.cell;
      canvas.height = 2 * box.cell;
      video.requestVideoFrameCallback(onFrame);
    },
    // The reads since the last call: [counter or null, due on screen (ms, wall clock),
    // received (ms, wall clock, or null), frames the video presented so far].
    take() {
      const taken = reads;
      reads = [];
      return taken;
    },
    // The page's wall clock now (ms): the bench compares it with its own.
    now() {
      return performance.timeOrigin + performance.now();
    },
  };
})();
