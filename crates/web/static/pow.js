// Rekey: solves the identify step's proof of work (definition in crates/core/src/pow.rs).
// Finds the smallest decimal counter n such that SHA-256 over the UTF-8 bytes of
// challenge + ":" + n starts with `bits` zero bits, puts it in the hidden `pow` input and
// submits the form. Runs under CSP script-src 'self': no inline code, no eval. Without
// JavaScript the input keeps "wait" and the server accepts it once the delay has passed.
(function () {
  "use strict";
  var K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
  ]);
  var IV = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
  var W = new Uint32Array(64);

  // One SHA-256 block: h (Uint32Array(8)) absorbs the 64 bytes of b at off.
  function block(h, b, off) {
    var i, x, y, t1, t2;
    for (i = 0; i < 16; i++, off += 4) {
      W[i] = b[off] << 24 | b[off + 1] << 16 | b[off + 2] << 8 | b[off + 3];
    }
    for (i = 16; i < 64; i++) {
      x = W[i - 15]; y = W[i - 2];
      W[i] = W[i - 16] + W[i - 7] + ((x >>> 7 | x << 25) ^ (x >>> 18 | x << 14) ^ x >>> 3) +
        ((y >>> 17 | y << 15) ^ (y >>> 19 | y << 13) ^ y >>> 10);
    }
    var a = h[0], c = h[1], d = h[2], e = h[3], f = h[4], g = h[5], k = h[6], l = h[7];
    for (i = 0; i < 64; i++) {
      t1 = l + ((f >>> 6 | f << 26) ^ (f >>> 11 | f << 21) ^ (f >>> 25 | f << 7)) +
        (f & g ^ ~f & k) + K[i] + W[i] | 0;
      t2 = ((a >>> 2 | a << 30) ^ (a >>> 13 | a << 19) ^ (a >>> 22 | a << 10)) +
        (a & c ^ a & d ^ c & d) | 0;
      l = k; k = g; g = f; f = e + t1 | 0; e = d; d = c; c = a; a = t1 + t2 | 0;
    }
    h[0] += a; h[1] += c; h[2] += d; h[3] += e; h[4] += f; h[5] += g; h[6] += k; h[7] += l;
  }

  // A hasher for prefix + suffix: the prefix's whole blocks are absorbed once (midstate).
  function hasher(prefix) {
    var whole = prefix.length - prefix.length % 64, mid = new Uint32Array(IV), i;
    for (i = 0; i < whole; i += 64) block(mid, prefix, i);
    var rest = prefix.subarray(whole), h = new Uint32Array(8), padded = [];
    return function (suffix) { // suffix: ASCII string; returns the digest as 8 words
      var len = rest.length + suffix.length, buf = padded[suffix.length];
      if (!buf) { // rest, room for the suffix, 0x80, zeros, bit length: once per suffix length
        var size = (len + 72) & ~63, bits = (prefix.length + suffix.length) * 8;
        buf = padded[suffix.length] = new Uint8Array(size);
        buf.set(rest);
        buf[len] = 0x80;
        buf[size - 4] = bits >>> 24; buf[size - 3] = bits >>> 16;
        buf[size - 2] = bits >>> 8; buf[size - 1] = bits;
      }
      for (i = 0; i < suffix.length; i++) buf[rest.length + i] = suffix.charCodeAt(i);
      h.set(mid);
      for (i = 0; i < buf.length; i += 64) block(h, buf, i);
      return h;
    };
  }

  function enoughZeros(h, bits) { // bits <= 32
    return bits === 0 || (h[0] >>> (32 - bits)) === 0;
  }

  function start() {
    var form = document.getElementById("pow-form");
    if (!form) return;
    var input = form.elements.namedItem("pow");
    var status = document.getElementById("pow-status");
    var challenge = form.getAttribute("data-challenge") || "";
    var bits = Number(form.getAttribute("data-bits"));
    if (!input || !challenge || !(bits >= 0 && bits <= 32 && bits % 1 === 0)) return;
    var say = function (key, text) {
      if (status) status.textContent = status.getAttribute("data-" + key) || text;
    };
    var hash = hasher(new TextEncoder().encode(challenge + ":"));
    var n = 0, done = false, pressed = false, submitter = null;
    // Pressing the button while working submits as soon as the counter is found.
    form.addEventListener("submit", function (event) {
      if (done) return;
      event.preventDefault();
      pressed = true;
      submitter = event.submitter || null;
    });
    function finish() {
      done = true;
      input.value = String(n);
      if (pressed || form.checkValidity()) {
        say("done", "Done. Continuing\u2026");
        if (!form.requestSubmit) form.submit();
        else if (submitter) form.requestSubmit(submitter);
        else form.requestSubmit();
      } else {
        say("ready", "Done. Please complete the form and continue.");
      }
    }
    function slice() {
      var until = Date.now() + 50;
      for (;;) {
        for (var i = 0; i < 500; i++, n++) {
          if (enoughZeros(hash(String(n)), bits)) return finish();
        }
        if (Date.now() >= until) return setTimeout(slice, 0);
      }
    }
    say("working", "Checking your browser\u2026 this takes a few seconds.");
    setTimeout(slice, 0);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
