import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { headerProblem, requestLineProblem } from './validate.js';

/**
 * SIP message model for the engine. Parsing is drachtio-srf's own parser (lazy mode: header values
 * stay strings, repeated headers are joined with commas), so the engine and the app read a message
 * the same way. This module only adds what a stack needs on top: validation that decides between
 * "answer 400" and "drop", header-list splitting, serialization with canonical names.
 */

interface ParsedByDrachtio {
  method?: string;
  uri?: string;
  status?: number;
  reason?: string;
  headers: Record<string, string>;
  body?: string;
}
interface DrachtioParser {
  parseSipMessage(s: string, lazy: boolean): ParsedByDrachtio | undefined;
  getHeaderName(name: string): string;
  getParser(name: string): (d: { s: string; i: number }) => unknown;
}

const require = createRequire(import.meta.url);
const parser = require('drachtio-srf/lib/sip-parser/parser.js') as DrachtioParser;

export type Protocol = 'udp' | 'tcp';

/** A parsed message. Header keys are the parser's normalized names (lowercase, except X-/P-). */
export interface SipMessage {
  method?: string;
  uri?: string;
  status?: number;
  reason?: string;
  headers: Record<string, string>;
  body: string;
}

export interface ParsedCSeq {
  seq: number;
  method: string;
}

export interface Via {
  protocol: string;
  host: string;
  port: number | undefined;
  params: Record<string, string | undefined>;
}

export class SipParseError extends Error {
  constructor(
    message: string,
    /** A 400 can be built (request line and a Via were found). */
    readonly answerable: boolean,
    /** What to answer with when answerable: 400, or 505 for an unknown SIP version. */
    readonly status: 400 | 505 = 400,
  ) {
    super(message);
  }
}

export const CRLF = '\r\n';
/** One header line longer than this is refused: no legitimate header comes close. */
export const MAX_HEADER_LINE = 16 * 1024;

const MANDATORY_REQUEST = ['via', 'from', 'to', 'call-id', 'cseq'] as const;
const MANDATORY_RESPONSE = ['via', 'from', 'to', 'call-id', 'cseq'] as const;

/**
 * Parses one complete message (a UDP datagram or one framed TCP message). Throws SipParseError;
 * never anything else, whatever the input.
 */
export function parseMessage(raw: string, byteLength: number): SipMessage {
  const headerEnd = raw.indexOf('\r\n\r\n');
  if (headerEnd < 0) throw new SipParseError('no end of headers', looksAnswerable(raw));
  const head = raw.slice(0, headerEnd);
  if (head.length > MAX_HEADER_LINE) {
    // Only scan line lengths when the head is long; the common case stays a single slice.
    for (const line of head.split(CRLF)) {
      if (line.length > MAX_HEADER_LINE) throw new SipParseError('header line too long', looksAnswerable(raw));
    }
  }
  const lineEnd = head.indexOf(CRLF);
  const firstLine = lineEnd < 0 ? head : head.slice(0, lineEnd);
  if (!firstLine.startsWith('SIP/')) {
    const p = requestLineProblem(firstLine);
    if (p) throw new SipParseError(p.why, looksAnswerable(raw), p.status);
  }
  let parsed: ParsedByDrachtio | undefined;
  try {
    parsed = parser.parseSipMessage(raw, true);
  } catch {
    parsed = undefined;
  }
  if (!parsed) throw new SipParseError('unparseable message', looksAnswerable(raw));
  const isRequest = typeof parsed.method === 'string';
  if (isRequest && !/^[A-Za-z]+$/.test(parsed.method ?? '')) throw new SipParseError('bad method', false);
  if (!isRequest && !(typeof parsed.status === 'number' && parsed.status >= 100 && parsed.status <= 699)) {
    throw new SipParseError('bad status', false);
  }
  const h = parsed.headers;
  for (const name of isRequest ? MANDATORY_REQUEST : MANDATORY_RESPONSE) {
    if (!h[name] || !h[name]!.trim()) throw new SipParseError(`missing ${name}`, isRequest && !!h.via);
  }
  const cseq = parseCSeq(h.cseq!);
  if (!cseq) throw new SipParseError('bad CSeq', isRequest);
  if (isRequest && cseq.method !== parsed.method) throw new SipParseError('CSeq method mismatch', true);
  if (!topVia(h.via!)) throw new SipParseError('bad Via', false);
  const problem = headerProblem(head, h, isRequest ? parsed.method!.toUpperCase() : undefined);
  if (problem) throw new SipParseError(problem.why, isRequest && (problem.answerable ?? true), problem.status);

  // Content-Length: the parser trusts it loosely; RFC 3261 18.3 wants a 400 when it lies.
  const bodyOffset = headerEnd + 4;
  const bodyBytes = byteLength - Buffer.byteLength(head, 'utf8') - 4;
  let body = raw.slice(bodyOffset);
  const cl = h['content-length'];
  if (cl !== undefined) {
    if (!/^\s*\d{1,9}\s*$/.test(cl)) throw new SipParseError('bad Content-Length', isRequest);
    const n = Number(cl);
    if (n > bodyBytes) throw new SipParseError('Content-Length larger than body', isRequest);
    if (n < bodyBytes) body = Buffer.from(body, 'utf8').subarray(0, n).toString('utf8');
  }
  const msg: SipMessage = { headers: h, body };
  if (isRequest) {
    msg.method = parsed.method!.toUpperCase();
    msg.uri = parsed.uri;
  } else {
    msg.status = parsed.status;
    msg.reason = parsed.reason ?? '';
  }
  return msg;
}

/** A request line (however spaced, any SIP version) that is not an ACK, and a Via line. */
function looksAnswerable(raw: string): boolean {
  return /^[A-Za-z]+ +\S+ +SIP\/\d+\.\d+[ \t]*\r\n/.test(raw) && !/^ACK /.test(raw) && /\r\n(?:via|v)[ \t]*:/i.test(raw);
}

/**
 * For input the parser refused: the header lines a 400 needs (Via, From, To, Call-ID, CSeq), found
 * by a line scan. Returns undefined when there is no request line or no Via to answer to.
 */
export function salvageForBadRequest(raw: string): Record<string, string> | undefined {
  if (!looksAnswerable(raw)) return undefined;
  const out: Record<string, string> = {};
  const end = raw.indexOf('\r\n\r\n');
  const lines = (end >= 0 ? raw.slice(0, end) : raw).split(CRLF);
  for (let i = 1; i < lines.length && i < 200; i++) {
    const line = lines[i]!;
    if (line.length > MAX_HEADER_LINE) continue;
    const m = /^([A-Za-z-]+)[ \t]*:[ \t]*(.*)$/.exec(line);
    if (!m) continue;
    const name = normalizeName(m[1]!);
    // Vias accumulate (the 400 goes back along them); of a repeated dialog header, the first.
    if (name === 'via') out.via = out.via ? `${out.via},${m[2]!}` : m[2]!;
    else if ((name === 'from' || name === 'to' || name === 'call-id' || name === 'cseq') && out[name] === undefined) out[name] = m[2]!;
  }
  return out.via ? out : undefined;
}

export function normalizeName(name: string): string {
  return parser.getHeaderName(name);
}

export function parseCSeq(v: string): ParsedCSeq | undefined {
  const m = /^\s*(\d{1,10})\s+([A-Za-z]+)\s*$/.exec(v);
  // The sequence number is a 32-bit unsigned integer (RFC 3261 8.1.1.5; RFC 4475 3.1.2.4).
  if (!m || Number(m[1]) > 4294967295) return undefined;
  return { seq: Number(m[1]), method: m[2]!.toUpperCase() };
}

/**
 * Splits a comma-joined header value into its elements, respecting quotes and <...>.
 * Via, Route and Record-Route are lists; the lazy parser joins repeated lines with commas.
 */
export function splitList(v: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c === 34 /* " */ && v.charCodeAt(i - 1) !== 92) quoted = !quoted;
    else if (quoted) continue;
    else if (c === 60 /* < */) depth++;
    else if (c === 62 /* > */) depth = Math.max(0, depth - 1);
    else if (c === 44 /* , */ && depth === 0) {
      const part = v.slice(start, i).trim();
      if (part) out.push(part);
      start = i + 1;
    }
  }
  const last = v.slice(start).trim();
  if (last) out.push(last);
  return out;
}

export function parseVia(v: string): Via | undefined {
  const m = /^SIP\s*\/\s*2\.0\s*\/\s*([A-Za-z]+)\s+(\[[^\]]+\]|[^\s;:]+)(?:\s*:\s*(\d{1,5}))?\s*(.*)$/i.exec(v);
  if (!m) return undefined;
  return {
    protocol: m[1]!.toUpperCase(),
    host: m[2]!,
    port: m[3] ? Number(m[3]) : undefined,
    params: parseParams(m[4] ?? ''),
  };
}

export function topVia(viaHeader: string): Via | undefined {
  const first = splitList(viaHeader)[0];
  return first ? parseVia(first) : undefined;
}

export function parseParams(s: string): Record<string, string | undefined> {
  const params: Record<string, string | undefined> = {};
  for (const part of s.split(';')) {
    const p = part.trim();
    if (!p) continue;
    const eq = p.indexOf('=');
    if (eq < 0) params[p.toLowerCase()] = undefined;
    else params[p.slice(0, eq).trim().toLowerCase()] = p.slice(eq + 1).trim();
  }
  return params;
}

/** The tag parameter of a From/To value, if any. */
export function tagOf(v: string | undefined): string | undefined {
  if (!v) return undefined;
  const gt = v.lastIndexOf('>');
  const m = /;\s*tag\s*=\s*([^;\s,]+)/i.exec(gt >= 0 ? v.slice(gt) : v);
  return m ? m[1] : undefined;
}

export interface HostPort {
  host: string;
  port: number;
  protocol: Protocol;
}

/**
 * Where a SIP URI says to send: host, port (default 5060) and transport (udp unless
 * transport=tcp). Accepts "sip:user@host:port;params", "<sip:...>" and bare "host:port".
 */
export function uriTarget(uri: string): HostPort | undefined {
  let u = uri.trim();
  const lt = u.indexOf('<');
  if (lt >= 0) u = u.slice(lt + 1, u.indexOf('>', lt) >= 0 ? u.indexOf('>', lt) : undefined);
  u = u.replace(/^sips?:/i, '');
  const at = u.indexOf('@');
  if (at >= 0) u = u.slice(at + 1);
  const m = /^(\[[^\]]+\]|[^:;?>\s]+)(?::(\d{1,5}))?([^?>]*)/.exec(u);
  if (!m) return undefined;
  const params = parseParams(m[3] ?? '');
  const transport = (params.transport ?? 'udp').toLowerCase();
  return {
    host: m[1]!.replace(/^\[|\]$/g, ''),
    port: m[2] ? Number(m[2]) : 5060,
    protocol: transport === 'tcp' ? 'tcp' : 'udp',
  };
}

/** RFC 3261 branch with the magic cookie; 12 random bytes are plenty for uniqueness. */
export function newBranch(): string {
  return 'z9hG4bK' + randomBytes(12).toString('base64url');
}

export function newTag(): string {
  return randomBytes(8).toString('hex');
}

const CANONICAL: Record<string, string> = {
  'call-id': 'Call-ID',
  cseq: 'CSeq',
  'www-authenticate': 'WWW-Authenticate',
  rack: 'RAck',
  rseq: 'RSeq',
  'mime-version': 'MIME-Version',
  'sip-etag': 'SIP-ETag',
  'sip-if-match': 'SIP-If-Match',
};
const canonicalCache = new Map<string, string>();

/** "retry-after" -> "Retry-After"; drachtio-server (sofia) writes canonical names, so do we. */
export function canonicalName(name: string): string {
  let c = canonicalCache.get(name);
  if (c) return c;
  c =
    CANONICAL[name] ??
    (/^[a-z]/.test(name) ? name.replace(/(^|-)([a-z])/g, (_m, d: string, ch: string) => d + ch.toUpperCase()) : name);
  if (canonicalCache.size < 1000) canonicalCache.set(name, c);
  return c;
}

/** Headers the serializer writes in this order first (readability; order between names is free). */
const LEADING = ['via', 'record-route', 'route', 'max-forwards', 'from', 'to', 'call-id', 'cseq', 'contact'];

export function serialize(msg: SipMessage): string {
  let s =
    msg.method !== undefined ? `${msg.method} ${msg.uri} SIP/2.0\r\n` : `SIP/2.0 ${msg.status} ${msg.reason ?? ''}\r\n`;
  const h = msg.headers;
  for (const name of LEADING) {
    const v = h[name];
    if (v !== undefined && v !== '') s += writeHeader(name, v);
  }
  for (const name in h) {
    if (name === 'content-length' || LEADING.includes(name)) continue;
    const v = h[name];
    if (v !== undefined) s += writeHeader(name, v);
  }
  s += `Content-Length: ${Buffer.byteLength(msg.body, 'utf8')}\r\n\r\n`;
  return s + msg.body;
}

function writeHeader(name: string, v: string): string {
  const cn = canonicalName(name);
  // List headers go out one element per line, as received (and as most tools expect).
  if (name === 'via' || name === 'route' || name === 'record-route') {
    let out = '';
    for (const el of splitList(v)) out += `${cn}: ${el}\r\n`;
    return out;
  }
  return `${cn}: ${v}\r\n`;
}

/** drachtio's time stamp format: UTC time of day, HH:MM:SS.uuuuuu. */
export function stackTime(now = Date.now()): string {
  const d = new Date(now);
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds() * 1000, 6)}`;
}

/** A response to `req` built from its dialog headers (RFC 3261 8.2.6). */
export function buildResponse(
  req: { headers: Record<string, string> },
  status: number,
  reason: string,
  toTag?: string,
  extra?: Record<string, string>,
): SipMessage {
  const h: Record<string, string> = {};
  const src = req.headers;
  if (src.via) h.via = src.via;
  if (src.from) h.from = src.from;
  if (src.to) h.to = toTag && status > 100 && !tagOf(src.to) ? `${src.to};tag=${toTag}` : src.to;
  if (src['call-id']) h['call-id'] = src['call-id'];
  if (src.cseq) h.cseq = src.cseq;
  if (extra) Object.assign(h, extra);
  return { status, reason, headers: h, body: '' };
}

export const REASONS: Record<number, string> = {
  100: 'Trying',
  180: 'Ringing',
  200: 'OK',
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  480: 'Temporarily Unavailable',
  481: 'Call/Transaction Does Not Exist',
  483: 'Too Many Hops',
  487: 'Request Terminated',
  500: 'Server Internal Error',
  503: 'Service Unavailable',
};

/**
 * A message written by the app (drachtio-srf's serializer): lenient, no mandatory headers (a
 * response from the app carries no Via; the engine adds the transaction's own).
 */
export function parseAppMessage(text: string): SipMessage | undefined {
  let parsed: ParsedByDrachtio | undefined;
  try {
    parsed = parser.parseSipMessage(text, true);
  } catch {
    return undefined;
  }
  if (!parsed) return undefined;
  const msg: SipMessage = { headers: parsed.headers, body: parsed.body ?? '' };
  if (parsed.method) {
    msg.method = parsed.method.toUpperCase();
    msg.uri = parsed.uri;
  } else {
    msg.status = parsed.status;
    msg.reason = parsed.reason ?? '';
  }
  return msg;
}
