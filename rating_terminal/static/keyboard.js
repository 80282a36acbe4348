// An on-screen Vietnamese keyboard for touch screens with no physical keyboard: letters,
// then a diacritic key that marks the word just typed, as Telex and VNI users expect
// (type "cham", then ^ and nặng: "chậm"). The tone goes on the vowel the spelling rules
// say, whichever order the keys came in.

// Combining marks (Unicode NFD): the five tones, and the shapes that make new letters.
const TONES = { sac: "\u0301", huyen: "\u0300", hoi: "\u0309", nga: "\u0303", nang: "\u0323" };
const TONE_MARKS = new Set(Object.values(TONES));
const HAT = "\u0302"; // â ê ô
const BREVE = "\u0306"; // ă
const HORN = "\u031B"; // ơ ư
const VOWELS = new Set("aăâeêioôơuưy");

// A letter as {base, tone}: base is the letter with its shape (NFC), tone a mark or "".
function split(ch) {
  const parts = [...ch.normalize("NFD")];
  const tone = parts.find((p) => TONE_MARKS.has(p)) || "";
  const base = parts.filter((p) => !TONE_MARKS.has(p)).join("").normalize("NFC");
  return { base, tone };
}

function join({ base, tone }) {
  return (base + tone).normalize("NFC");
}

function isVowel(base) {
  return VOWELS.has(base.toLowerCase());
}

// Which letter of a word carries its tone: a shaped vowel (ơ in ươ) first; otherwise
// in a final syllable the last vowel, in an open one with two vowels the first (three:
// the middle). "qu" and "gi" before a vowel do not count their u and i.
function toneIndex(letters) {
  const lower = letters.map((l) => l.base.toLowerCase());
  let start = lower.findIndex((b) => isVowel(b));
  if (start < 0) return -1;
  let end = start;
  while (end + 1 < lower.length && isVowel(lower[end + 1])) end += 1;
  const head = lower.slice(0, start).join("");
  if (end > start && ((head === "q" && lower[start] === "u") || (head === "g" && lower[start] === "i"))) {
    start += 1;
  }
  const cluster = [];
  for (let i = start; i <= end; i += 1) cluster.push(i);
  const shaped = cluster.filter((i) => "ăâêôơư".includes(lower[i]));
  if (shaped.length) return shaped[shaped.length - 1];
  if (cluster.length === 1) return cluster[0];
  if (end + 1 < lower.length) return cluster[cluster.length - 1]; // a final consonant follows
  if (cluster.length === 3) return cluster[1];
  return cluster[0];
}

// The last word of the text (letters only) and what comes before it.
function lastWord(text) {
  const chars = [...text];
  let i = chars.length;
  while (i > 0 && /\p{L}/u.test(chars[i - 1])) i -= 1;
  return { before: chars.slice(0, i).join(""), word: chars.slice(i).map(split) };
}

function placeTone(word, tone) {
  const at = toneIndex(word);
  if (at < 0) return word;
  const had = word.find((l) => l.tone)?.tone || "";
  for (const l of word) l.tone = "";
  word[at].tone = had === tone ? "" : tone; // the same tone again takes it off
  return word;
}

// A shape key: ^ on the word's last a, e or o; the horn on o and u (both of "uo");
// the breve on a. Again on a shaped letter: back to the plain one.
function reshape(word, mark) {
  const targets = { [HAT]: "aeo", [BREVE]: "a", [HORN]: "ou" }[mark];
  const shapedBy = (b) => split(b).base.normalize("NFD").includes(mark);
  const plain = (b) => b.normalize("NFD").replace(/[\u0302\u0306\u031B]/g, "").normalize("NFC");
  const tone = word.find((l) => l.tone)?.tone || "";
  for (const l of word) l.tone = "";
  let changed = false;
  for (let i = word.length - 1; i >= 0 && !changed; i -= 1) {
    const p = plain(word[i].base);
    if (!targets.includes(p.toLowerCase())) continue;
    if (shapedBy(word[i].base)) {
      word[i].base = p;
    } else {
      word[i].base = (p + mark).normalize("NFC");
      // ươ: the horn on "uo" marks both.
      if (mark === HORN && p.toLowerCase() === "o" && i > 0 && plain(word[i - 1].base).toLowerCase() === "u") {
        word[i - 1].base = (plain(word[i - 1].base) + HORN).normalize("NFC");
      }
    }
    changed = true;
  }
  return tone ? placeTone(word, tone) : word;
}

export function applyMark(text, key) {
  const { before, word } = lastWord(text);
  if (!word.length) return text;
  const marked = key in TONES ? placeTone(word, TONES[key]) : reshape(word, { hat: HAT, breve: BREVE, horn: HORN }[key]);
  return before + marked.map(join).join("");
}

export const LETTER_ROWS = [
  ["q", "w", "e", "r", "t", "y", "u", "i", "o", "p"],
  ["a", "s", "d", "f", "g", "h", "j", "k", "l", "đ"],
  ["z", "x", "c", "v", "b", "n", "m", ",", "."],
];
// Each diacritic key shows what it does on a sample letter, so nobody needs to know its name.
export const MARK_KEYS = [
  { key: "sac", label: "á" },
  { key: "huyen", label: "à" },
  { key: "hoi", label: "ả" },
  { key: "nga", label: "ã" },
  { key: "nang", label: "ạ" },
  { key: "hat", label: "â ê ô" },
  { key: "breve", label: "ă" },
  { key: "horn", label: "ơ ư" },
];

// Builds the keyboard into `node`; onText(newText) after every key.
export function keyboard(node, { el, getText, onText, maxLength, words }) {
  const type = (fn) => {
    const next = fn(getText());
    if ([...next].length <= maxLength) onText(next);
  };
  const key = (label, action, attrs = {}) =>
    el("button", { type: "button", class: "kb-key", onclick: action, ...attrs }, label);
  const rows = LETTER_ROWS.map((row) =>
    el("div", { class: "kb-row" }, row.map((ch) => key(ch, () => type((t) => t + ch), { "data-key": ch }))),
  );
  rows[2].append(
    key(words.delete, () => type((t) => [...t].slice(0, -1).join("")), { class: "kb-key kb-wide", "data-key": "delete" }),
  );
  const marks = el("div", { class: "kb-row kb-marks", role: "group", "aria-label": words.tone },
    MARK_KEYS.map((m) => key(m.label, () => type((t) => applyMark(t, m.key)), { class: "kb-key kb-mark", "data-key": m.key })));
  const space = el("div", { class: "kb-row" },
    key(words.space, () => type((t) => (t && !t.endsWith(" ") ? t + " " : t)), { class: "kb-key kb-space", "data-key": "space" }));
  node.replaceChildren(el("p", { class: "kb-hint" }, words.hint), marks, ...rows, space);
}
