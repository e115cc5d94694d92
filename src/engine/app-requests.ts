import type { Logger } from '../log.js';
import type { AppClient } from './control.js';
import type { Dest, TransactionLayer } from './transactions.js';
import { buildResponse, newBranch, newTag, parseCSeq, REASONS, serialize, stackTime, tagOf, type SipMessage } from './sip.js';
import type { Source } from './transport.js';

/**
 * Requests an app sends outside any dialog the engine holds (`srf.request`): the edge's BYEs that
 * end a proxied call (src/edge/call-ender.ts). Non-INVITE only, as drachtio-server builds them
 * (sip-dialog-controller.cpp, doSendRequestOutsideDialog): the app's From, To, Call-ID and CSeq
 * are kept (a From without a tag gets one), Via, Route, Record-Route, RSeq and Content-Length are
 * the server's own (the app's are dropped), the request goes to the `proxy` URI when the app
 * names one, else to the Request-URI. The app is answered with the request as sent, then gets
 * every response; no final response within Timer F is a 408 from the engine.
 */

/** Headers an app may not set (drachtio-server's immutable headers). */
const SERVER_ONLY = new Set(['via', 'route', 'record-route', 'rseq', 'content-length']);

export interface AppRequestDeps {
  tx: TransactionLayer;
  log: Logger;
  local: { host: string; port: number };
  resolve(uri: string): Promise<Dest | undefined>;
  isLocal(host: string, port: number | undefined): boolean;
  /** The app's answer to its command. */
  respond(app: AppClient, msgId: string, text: string): void;
  /** A response for the app (`sip|network|...`), tagged with the request's transaction id. */
  toApp(app: AppClient, raw: string, source: Source, txnId: string): void;
}

let sent = 0;

export async function sendAppRequest(deps: AppRequestDeps, app: AppClient, msgId: string, m: SipMessage, proxy: string | undefined): Promise<void> {
  const method = m.method!;
  const uri = m.uri ?? '';
  if (method === 'INVITE' || method === 'ACK' || method === 'CANCEL') {
    return deps.respond(app, msgId, `NOK|the embedded engine does not send ${method} for apps`);
  }
  const dest = await deps.resolve(proxy || uri);
  if (!dest) return deps.respond(app, msgId, `NOK|invalid request-uri: ${uri}`);
  if (deps.isLocal(dest.address, dest.port)) return deps.respond(app, msgId, 'NOK|can not send request to myself');

  const { host, port } = deps.local;
  const branch = newBranch();
  const headers: Record<string, string> = {};
  for (const name in m.headers) if (!SERVER_ONLY.has(name)) headers[name] = m.headers[name]!;
  headers.via = `SIP/2.0/${dest.protocol.toUpperCase()} ${host}:${port};rport;branch=${branch}`;
  headers['max-forwards'] ??= '70';
  headers.from ??= `<sip:${host}:${port}>`;
  if (!tagOf(headers.from)) headers.from += `;tag=${newTag()}`;
  headers.to ??= `<${uri}>`;
  headers['call-id'] ??= `${Date.now().toString(36)}-${++sent}@${host}`;
  const cseq = parseCSeq(headers.cseq ?? '');
  headers.cseq = `${cseq?.seq ?? 1} ${method}`;
  const req: SipMessage = { method, uri, headers, body: m.body };

  const txnId = `app-${branch}`;
  const callId = headers['call-id'];
  deps.tx.startClient(branch, req, dest, {
    onResponse: (_res, raw, source) => deps.toApp(app, raw, source, txnId),
    onTimeout: () => {
      deps.log.warn({ callId, method, uri }, 'app request: no final response (Timer F): 408 to the app');
      const timeout = serialize(buildResponse(req, 408, REASONS[408]!));
      deps.toApp(app, timeout, { protocol: dest.protocol, address: host, port }, txnId);
    },
  });
  const text = serialize(req);
  deps.log.debug({ callId, method, uri, dest }, 'app request sent');
  deps.respond(app, msgId, `OK|application|${Buffer.byteLength(text, 'utf8')}|${dest.protocol}|${dest.address}|${dest.port}|${stackTime()}|${txnId}|\r\n${text}`);
}
