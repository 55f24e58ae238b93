// Checks an entry's inclusion proof against the signed checkpoint, in the browser (WebCrypto).
// It reads what the page shows (the entry bytes, the audit path, the checkpoint note), recomputes
// the leaf hash SHA-256(0x00 || entry) and the RFC 6962 root (RFC 9162 2.1.3.2), and compares it
// with the checkpoint's root hash: the server's word is not needed. (The note's signature is
// checked offline: the downloadable tlog-proof and the key at /log/v1/keys.)
(function () {
  "use strict";
  if (window.rlhfVerify) return;
  const unb64 = (s) => Uint8Array.from(atob(s.trim()), (c) => c.charCodeAt(0));
  const b64 = (a) => btoa(String.fromCharCode(...a));
  const cat = (...parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let i = 0;
    for (const p of parts) { out.set(p, i); i += p.length; }
    return out;
  };
  const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const node = (l, r) => sha256(cat([1], l, r));

  async function rootFromPath(index, size, leaf, path) {
    if (index < 0 || index >= size) throw new Error("the index is outside the tree");
    let fn = BigInt(index), sn = BigInt(size - 1), r = leaf;
    for (const p of path) {
      if (sn === 0n) throw new Error("the proof is longer than the tree is deep");
      if ((fn & 1n) || fn === sn) {
        r = await node(p, r);
        if (!(fn & 1n)) { while (!(fn & 1n) && fn !== 0n) { fn >>= 1n; sn >>= 1n; } }
      } else {
        r = await node(r, p);
      }
      fn >>= 1n; sn >>= 1n;
    }
    if (sn !== 0n) throw new Error("the proof is shorter than the tree is deep");
    return r;
  }

  function checkpointOf(note) {
    const [origin, size, root] = note.split("\n\n")[0].split("\n");
    if (!origin || !/^\d+$/.test(size || "")) throw new Error("the checkpoint note is malformed");
    return { size: Number(size), root: unb64(root) };
  }

  async function verify() {
    const data = document.getElementById("proof-data");
    const entry = unb64(data.dataset.entry);
    const index = Number(data.dataset.index);
    const path = [...document.querySelectorAll("#audit-path li[data-hash]")].map((li) => unb64(li.textContent));
    const cp = checkpointOf(document.getElementById("checkpoint-note").textContent);
    if (cp.size !== Number(data.dataset.size)) throw new Error("the proof is for another tree size");
    const leaf = await sha256(cat([0], entry));
    const root = await rootFromPath(index, cp.size, leaf, path);
    return { ok: b64(root) === b64(cp.root), leaf: b64(leaf), root: b64(root), expected: b64(cp.root) };
  }

  window.rlhfVerify = verify;
  document.addEventListener("click", async (ev) => {
    const button = ev.target.closest("[data-verify]");
    if (!button) return;
    const out = document.getElementById("verify-result");
    out.className = "";
    out.textContent = "checking…";
    try {
      const r = await verify();
      out.className = r.ok ? "ok" : "bad";
      out.textContent = r.ok
        ? "✓ Verified: the entry is in the log under the checkpoint's root " + r.root
        : "✗ Not verified: the path leads to " + r.root + ", the checkpoint says " + r.expected;
    } catch (e) {
      out.className = "bad";
      out.textContent = "✗ Not verified: " + e.message;
    }
  });
})();
