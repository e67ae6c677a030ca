/**
 * Bytes to text as kubectl reads a manifest: a UTF-8 or UTF-16 byte order mark picks the encoding (kubectl wraps
 * its input in a BOM-override decoder), otherwise UTF-8. Where kubectl would quietly substitute U+FFFD (invalid
 * UTF-8, unpaired surrogates) or misread the file (UTF-32), the CLI refuses and says where.
 */
export type Decoded = { ok: true; text: string } | { ok: false; error: string };

/** Length of the sequence a lead byte starts, and the allowed range of its second byte (RFC 3629); 0 if none. */
function sequenceOf(lead: number): [length: number, low: number, high: number] {
  if (lead < 0x80) return [1, 0, 0];
  if (lead >= 0xc2 && lead <= 0xdf) return [2, 0x80, 0xbf];
  if (lead === 0xe0) return [3, 0xa0, 0xbf];
  if (lead === 0xed) return [3, 0x80, 0x9f]; // no surrogates
  if (lead >= 0xe1 && lead <= 0xef) return [3, 0x80, 0xbf];
  if (lead === 0xf0) return [4, 0x90, 0xbf];
  if (lead >= 0xf1 && lead <= 0xf3) return [4, 0x80, 0xbf];
  if (lead === 0xf4) return [4, 0x80, 0x8f]; // nothing past U+10FFFF
  return [0, 0, 0];
}

/** Offset of the first byte that does not start or continue a well-formed UTF-8 sequence, or -1. */
export function firstInvalidUtf8(bytes: Uint8Array, from = 0): number {
  let i = from;
  while (i < bytes.length) {
    const [length, low, high] = sequenceOf(bytes[i]!);
    if (length === 0) return i;
    for (let k = 1; k < length; k++) {
      const c = bytes[i + k];
      const [min, max] = k === 1 ? [low, high] : [0x80, 0xbf];
      if (c === undefined || c < min || c > max) return i;
    }
    i += length;
  }
  return -1;
}

function utf16(bytes: Uint8Array, bigEndian: boolean): Decoded {
  const body = bytes.subarray(2);
  if (body.length % 2 !== 0) return { ok: false, error: `UTF-16 input has an odd number of bytes (${bytes.length})` };
  const units = new Uint16Array(body.length / 2);
  for (let i = 0; i < units.length; i++) units[i] = bigEndian ? (body[2 * i]! << 8) | body[2 * i + 1]! : body[2 * i]! | (body[2 * i + 1]! << 8);
  for (let i = 0; i < units.length; i++) {
    const unit = units[i]!;
    const next = units[i + 1] ?? 0;
    if (unit >= 0xd800 && unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) i++;
    else if (unit >= 0xd800 && unit <= 0xdfff) return { ok: false, error: `byte offset ${2 + 2 * i}: unpaired UTF-16 surrogate` };
  }
  let text = '';
  for (let i = 0; i < units.length; i += 8192) text += String.fromCharCode(...units.subarray(i, i + 8192));
  return { ok: true, text };
}

export function decodeManifest(bytes: Uint8Array): Decoded {
  const [b0, b1, b2, b3] = bytes;
  if ((b0 === 0xff && b1 === 0xfe && b2 === 0 && b3 === 0) || (b0 === 0 && b1 === 0 && b2 === 0xfe && b3 === 0xff)) {
    return { ok: false, error: 'UTF-32 input is not supported (kubectl cannot read it either); convert it to UTF-8' };
  }
  if (b0 === 0xfe && b1 === 0xff) return utf16(bytes, true);
  if (b0 === 0xff && b1 === 0xfe) return utf16(bytes, false);
  const start = b0 === 0xef && b1 === 0xbb && b2 === 0xbf ? 3 : 0;
  const invalid = firstInvalidUtf8(bytes, start);
  if (invalid >= 0) return { ok: false, error: `byte offset ${invalid}: invalid UTF-8 (byte 0x${bytes[invalid]!.toString(16).padStart(2, '0')})` };
  return { ok: true, text: Buffer.from(bytes.buffer, bytes.byteOffset + start, bytes.length - start).toString('utf8') };
}

/**
 * A character go-yaml refuses ("control characters are not allowed"): C0 and C1 controls other than tab, line
 * feed, carriage return and NEL, DEL, and U+FFFE/U+FFFF. Returns its index in the text, or -1.
 */
export function firstDisallowedCharacter(text: string): number {
  const match = /[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/u.exec(text);
  return match ? match.index : -1;
}
