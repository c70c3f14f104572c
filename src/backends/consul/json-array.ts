// backends/consul/json-array: the elements of a large JSON array reply, found as byte ranges, so a caller parses
// only the ones it has not seen before.
//
// Why: the health-state hint's replies are large and mostly the same from one to the next (hint-checks.ts). Its
// compact replies are cut with native searches; this scan is for the rest (indented replies, or a cut that did not
// hold). It only finds where each element starts and ends; JSON.parse still parses, and so validates, every
// element text the caller has not seen.

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;

/** JSON whitespace (RFC 8259 §2). */
export const isSpace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/**
 * Calls `each(start, end)` with the byte range of every element of the JSON array in `b` (UTF-8), in order,
 * without the whitespace around it.
 * Returns false (calling nothing) when `b` is valid JSON but not an array.
 * Throws SyntaxError when the array itself is malformed (brackets, commas, an unterminated string, trailing
 * text). An element's own text is checked only by parsing it: a caller must JSON.parse every range whose bytes
 * it has not parsed before.
 */
export function eachArrayRange(b: Buffer, each: (start: number, end: number) => void): boolean {
  const n = b.length;
  let i = 0;
  while (i < n && isSpace(b[i]!)) i++;
  if (i >= n || b[i] !== OPEN_ARRAY) {
    JSON.parse(b.toString('utf8')); // not an array, or not JSON at all: JSON.parse says which
    return false;
  }
  i++;
  while (i < n && isSpace(b[i]!)) i++;
  if (i < n && b[i] === CLOSE_ARRAY) return trailing(b, i + 1);
  for (;;) {
    const start = i;
    let depth = 0;
    // One pass over the bytes. Skipping each string with a native indexOf was slower: one call per string.
    let inString = false;
    for (; i < n; i++) {
      const c = b[i]!;
      if (inString) {
        if (c === BACKSLASH) i++; // the escaped byte is never a closing quote
        else if (c === QUOTE) inString = false;
        continue;
      }
      if (c === QUOTE) inString = true;
      else if (c === OPEN_ARRAY || c === OPEN_OBJECT) depth++;
      else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
        if (depth === 0) break;
        depth--;
      } else if (c === COMMA && depth === 0) break;
    }
    if (i >= n) throw new SyntaxError(inString ? 'Unterminated string in JSON' : 'Unexpected end of JSON input');
    let end = i;
    while (end > start && isSpace(b[end - 1]!)) end--;
    if (end === start) throw new SyntaxError(`Unexpected token '${String.fromCharCode(b[i]!)}' in JSON at position ${i}`);
    each(start, end);
    if (b[i] !== COMMA) {
      if (b[i] !== CLOSE_ARRAY) throw new SyntaxError(`Unexpected token '}' in JSON at position ${i}`);
      return trailing(b, i + 1);
    }
    i++;
    while (i < n && isSpace(b[i]!)) i++;
  }
}

function trailing(b: Uint8Array, from: number): true {
  for (let j = from; j < b.length; j++) {
    if (!isSpace(b[j]!)) throw new SyntaxError(`Unexpected non-whitespace character after JSON at position ${j}`);
  }
  return true;
}
