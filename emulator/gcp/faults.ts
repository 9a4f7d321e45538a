// Injected faults rendered in the Google services' own wire shapes, so a client's error handling is
// exercised as Google would exercise it: an OAuth error body from STS, a google.rpc.Status envelope
// from IAM Credentials, a body that is not JSON, JSON cut short, or a connection dropped.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GoogleService } from './service.js';

export type GoogleRenderableFault =
  | { kind: 'unavailable' }
  | { kind: 'error'; status: number; code: string; message: string }
  | { kind: 'malformed' }
  | { kind: 'truncated' };

export function writeGoogleFault(req: IncomingMessage, res: ServerResponse, service: GoogleService, fault: GoogleRenderableFault): void {
  const send = (status: number, type: string, body: string): void => {
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  switch (fault.kind) {
    case 'unavailable':
      req.socket.destroy();
      return;
    case 'error': {
      const body =
        service === 'gcp-sts'
          ? { error: fault.code, error_description: fault.message }
          : { error: { code: fault.status, message: fault.message, status: fault.code } };
      send(fault.status, 'application/json; charset=utf-8', JSON.stringify(body));
      return;
    }
    case 'malformed':
      // What a captive portal or misrouted proxy returns: a page, not the service.
      send(200, 'text/html; charset=utf-8', '<html><body>not Google</body></html>\n');
      return;
    case 'truncated': {
      const full =
        service === 'gcp-sts'
          ? JSON.stringify({
              access_token: 'gcpemu-placeholder',
              issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
              token_type: 'Bearer',
              expires_in: 3600,
            })
          : JSON.stringify({ accessToken: 'gcpemu-placeholder', expireTime: '1970-01-01T00:00:00Z' });
      send(200, 'application/json; charset=utf-8', full.slice(0, full.length >> 1));
      return;
    }
  }
}
