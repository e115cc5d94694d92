/**
 * Syntax checks on the parts of a SIP message a stack acts on, for what arrives from the network.
 * drachtio-srf's parser is lenient (it joins repeated headers with commas and reads values
 * loosely); drachtio-server's SIP stack (sofia-sip) refuses with 400, or drops, what it cannot
 * read. These checks hold the engine to that, for the RFC 4475 torture cases (sections 3.1.2,
 * 3.3.8, 3.3.9), so a malformed request never reaches the app. Pure functions: each returns
 * what is wrong, or undefined.
 */

export interface Problem {
  why: string;
  /** The status to answer with when the request can be answered (400 unless said). */
  status?: 400 | 505;
  /** Whether a response can be routed back (false: the top Via itself is unreadable). */
  answerable?: boolean;
}

const TOKEN = "[A-Za-z0-9.!%*_+`'~-]+";
const QUOTED = '"(?:[^"\\\\\\r\\n]|\\\\.)*"';
/** A parameter value: token, quoted string, or a host (received=2001:db8::1, maddr=[::1]). */
const PARAM_VALUE = `(?:[A-Za-z0-9.!%*_+\`'~:-]+|${QUOTED}|\\[[0-9A-Fa-f:.]+\\])`;
/** `;name[=value]` repeated; an empty parameter (`;;`) or a stray comma does not match. */
const PARAMS = new RegExp(`^(?:\\s*;\\s*${TOKEN}(?:\\s*=\\s*${PARAM_VALUE})?)*\\s*$`);
const QUOTED_START = new RegExp(`^${QUOTED}`);
const DISPLAY_TOKENS = new RegExp(`^${TOKEN}(?:\\s+${TOKEN})*$`);
const MEDIA_TYPE = new RegExp(`^${TOKEN}/${TOKEN}(?:\\s*;\\s*${TOKEN}\\s*=\\s*(?:${TOKEN}|${QUOTED}))*\\s*$`);
const RFC1123_GMT = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;
const VIA = new RegExp(`^SIP\\s*/\\s*2\\.0\\s*/\\s*${TOKEN}\\s+(?:\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+)(?:\\s*:\\s*\\d{1,5})?`);
const UINT32_MAX = 4294967295;

/** Header fields that may appear once (RFC 3261 section 7.3.1; RFC 4475 3.3.8 and 3.3.9). */
const SINGLE = new Set(['to', 'from', 'call-id', 'cseq', 'max-forwards', 'content-length']);
const COMPACT: Record<string, string> = { t: 'to', f: 'from', i: 'call-id', l: 'content-length' };
const SINGLE_HEADER_LINE = /\r\n(to|t|from|f|call-id|i|cseq|max-forwards|content-length|l)[ \t]*:/gi;

/**
 * The request line: `Method SP Request-URI SP SIP/2.0`. Trailing blanks are tolerated, as by
 * drachtio-server (RFC 4475 3.1.2.10 allows either).
 */
export function requestLineProblem(line: string): Problem | undefined {
  const m = /^([^ \t]+) ([^ \t]+) (SIP\/\d+\.\d+)[ \t]*$/.exec(line);
  if (!m) {
    if (/^[^ \t]+ {2,}|^[^ \t]+ [^ \t]+ {2,}SIP\//.test(line)) return { why: 'more than one SP between request-line elements' };
    return { why: 'malformed request line' };
  }
  const [, method, uri, version] = m as unknown as [string, string, string, string];
  if (!/^[A-Za-z]+$/.test(method)) return { why: 'bad method' };
  if (version !== 'SIP/2.0') return { why: `unsupported version ${version}`, status: 505 };
  if (/[<>"]/.test(uri)) return { why: 'Request-URI enclosed in <> or quoted' };
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:./.test(uri)) return { why: 'Request-URI without a scheme' };
  if (/^sips?:/i.test(uri) && !/^sips?:(?:[^@;?]*@)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::\d{1,5})?(?:[;?]|$)/i.test(uri)) {
    return { why: 'Request-URI without a host' };
  }
  return undefined;
}

/**
 * The header section (after the start line): single-value fields given once, and the fields a
 * stack reads (Via, From, To, Contact, Max-Forwards, Content-Type, Expires, Date) well formed. `h` is the
 * parser's view (repeated fields joined by commas); `head` the raw header text for counting.
 */
export function headerProblem(head: string, h: Record<string, string>, method: string | undefined): Problem | undefined {
  const dup = repeatedSingleHeader(head);
  if (dup) return { why: `more than one ${dup} header` };

  const vias = splitTopLevel(h.via ?? '');
  for (let i = 0; i < vias.length; i++) {
    const v = vias[i]!;
    const at = VIA.exec(v);
    if (!at || !PARAMS.test(v.slice(at[0].length))) return { why: 'bad Via header', answerable: i > 0 };
  }
  if (vias.length === 0) return { why: 'bad Via header', answerable: false };

  for (const name of ['from', 'to'] as const) {
    const v = h[name];
    if (v === undefined) continue;
    const parts = splitTopLevel(v);
    if (parts.length !== 1) return { why: `bad ${name === 'from' ? 'From' : 'To'} header` };
    const p = nameAddrProblem(parts[0]!);
    if (p) return { why: `bad ${name === 'from' ? 'From' : 'To'} header: ${p}` };
  }

  const contact = h.contact;
  if (contact !== undefined) {
    if (contact.trim() === '*') {
      // Only a REGISTER removing every binding may say `*` (RFC 3261 10.2.2).
      if (method !== 'REGISTER') return { why: 'Contact * outside REGISTER' };
    } else {
      const parts = splitTopLevel(contact);
      if (parts.length === 0) return { why: 'bad Contact header' };
      for (const part of parts) {
        const p = nameAddrProblem(part);
        if (p) return { why: `bad Contact header: ${p}` };
      }
    }
  }

  const mf = h['max-forwards'];
  if (mf !== undefined && !(/^\s*\d{1,10}\s*$/.test(mf) && Number(mf) <= UINT32_MAX)) return { why: 'bad Max-Forwards header' };

  const ct = h['content-type'];
  if (ct !== undefined && !MEDIA_TYPE.test(ct.trim())) return { why: 'bad Content-Type header' };

  // Expires: delta-seconds (any size: RFC 4475 3.1.2.4 lets a large one mean the default), or
  // the RFC 2543 date form some phones still send.
  const expires = h.expires;
  if (expires !== undefined && !/^\s*\d+\s*$/.test(expires) && !RFC1123_GMT.test(expires.trim())) return { why: 'bad Expires header' };

  const date = h.date;
  if (date !== undefined && !RFC1123_GMT.test(date.trim())) return { why: 'bad Date header (RFC 1123, GMT)' };

  return undefined;
}

/**
 * One name-addr or addr-spec with its header parameters (From, To, one Contact element):
 * `["display" | display tokens] <URI> *(;param)` or `URI *(;param)`.
 */
export function nameAddrProblem(value: string): string | undefined {
  const s = value.trim();
  let rest: string;
  const lt = firstUnquoted(s, '<');
  if (s.startsWith('"') || lt >= 0) {
    let i = 0;
    if (s.startsWith('"')) {
      const q = QUOTED_START.exec(s);
      if (!q) return 'unterminated quoted display name';
      i = q[0].length;
      while (s[i] === ' ' || s[i] === '\t') i++;
      if (s[i] !== '<') return 'display name without <URI>';
    } else {
      i = lt;
      const display = s.slice(0, i).trim();
      if (display && !DISPLAY_TOKENS.test(display)) return 'unquoted display name with non-token characters';
    }
    const gt = s.indexOf('>', i);
    if (gt < 0) return 'unclosed <';
    // Blanks just inside <> are tolerated, as by drachtio-server (RFC 4475 3.1.2.14 allows it).
    const uri = s.slice(i + 1, gt).trim();
    if (!uri || /[\s<>"]/.test(uri)) return 'bad URI in <>';
    rest = s.slice(gt + 1);
  } else {
    // addr-spec: parameters after the URI belong to the header; a URI with headers (?) or a comma
    // must be enclosed in <> (RFC 3261 20.10; RFC 4475 3.1.2.13).
    const semi = s.indexOf(';');
    const uri = semi < 0 ? s : s.slice(0, semi);
    if (!/^[A-Za-z][A-Za-z0-9+.-]*:[^\s<>"?,]+$/.test(uri)) return 'URI not enclosed in <> or malformed';
    rest = semi < 0 ? '' : s.slice(semi);
  }
  return PARAMS.test(rest) ? undefined : 'bad header parameters';
}

/** Index of the first `ch` outside a quoted string, or -1. */
function firstUnquoted(s: string, ch: string): number {
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === ch) return i;
  }
  return -1;
}

/** Splits at commas outside quotes and <>, keeping empty elements (a stray comma is an error). */
function splitTopLevel(v: string): string[] {
  if (!v.trim()) return [];
  const out: string[] = [];
  let quoted = false;
  let angle = false;
  let start = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === '<') angle = true;
    else if (c === '>') angle = false;
    else if (c === ',' && !angle) {
      out.push(v.slice(start, i).trim());
      start = i + 1;
    }
  }
  out.push(v.slice(start).trim());
  return out;
}

/** The first single-value header field that appears twice (compact forms count), if any. */
function repeatedSingleHeader(head: string): string | undefined {
  // One native scan of the header text: cheaper than splitting it into lines.
  const seen = new Set<string>();
  SINGLE_HEADER_LINE.lastIndex = 0;
  for (let m = SINGLE_HEADER_LINE.exec(head); m; m = SINGLE_HEADER_LINE.exec(head)) {
    const raw = m[1]!.toLowerCase();
    const name = COMPACT[raw] ?? raw;
    if (seen.has(name)) return name;
    seen.add(name);
  }
  return undefined;
}
