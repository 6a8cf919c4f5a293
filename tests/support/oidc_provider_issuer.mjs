// An independent token issuer for the gate's interoperability tests: npm `oidc-provider` issuing
// RFC 9068 JWT access tokens through the client credentials grant with RFC 8707 resource
// indicators.
//
// Usage: node oidc_provider_issuer.mjs PORT
//   PORT                   0 picks a free loopback port (the ready line says which)
//   INTEROP_CLIENT_SECRET  the secret of the client "interop-client" (required)
//   INTEROP_GATE_SECRET    the secret of "interop-gate", the client that may introspect (required)
//   INTEROP_JWKS_FILE      a private JWKS to sign with (optional; default: a new RSA and P-256 key);
//                          the first key of an algorithm signs, every key is published
//   INTEROP_ISSUER_PATH    a path for the issuer, e.g. /realms/shop as Keycloak has (optional);
//                          the provider is mounted there and everything else is 404
//
// Resource servers (audience = resource identifier, scopes, signing alg, token lifetime):
//   https://orders.interop.test   orders:read orders:write   RS256  300 s
//   https://reports.interop.test  reports:read               ES256  300 s
//   https://opaque.interop.test   opaque:read                opaque 300 s (RFC 7662 introspection)
// The client holds every scope above and the role "auditor" (a `roles` claim, RFC 9068 §2.2.3.1).
// DPoP (RFC 9449) is enabled: a token request with a DPoP proof gets a key-bound token (cnf.jkt).
//
// Prints one line `ready <issuer>` on stdout once it listens; stops on SIGTERM.
import { createServer } from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const entry = path.join(here, '..', 'node', 'node_modules', 'oidc-provider', 'lib', 'index.js');
const { default: Provider, errors } = await import(pathToFileURL(entry).href);

const RESOURCES = {
  'https://orders.interop.test': { scope: 'orders:read orders:write', alg: 'RS256' },
  'https://reports.interop.test': { scope: 'reports:read', alg: 'ES256' },
  'https://opaque.interop.test': { scope: 'opaque:read', format: 'opaque' },
};

function generatedKeys() {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  return {
    keys: [
      { ...rsa, kid: 'rsa-generated', alg: 'RS256', use: 'sig' },
      { ...ec, kid: 'ec-generated', alg: 'ES256', use: 'sig' },
    ],
  };
}

const port = Number(process.argv[2] ?? '0');
const secret = process.env.INTEROP_CLIENT_SECRET;
const gateSecret = process.env.INTEROP_GATE_SECRET;
if (!Number.isInteger(port) || !secret || !gateSecret) {
  console.error('usage: INTEROP_CLIENT_SECRET=... INTEROP_GATE_SECRET=... node oidc_provider_issuer.mjs PORT');
  process.exit(2);
}
const jwksFile = process.env.INTEROP_JWKS_FILE;
const jwks = jwksFile ? JSON.parse(readFileSync(jwksFile, 'utf8')) : generatedKeys();

// Listen first, so that port 0 can be used: the issuer URL needs the actual port.
const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, '127.0.0.1', resolve);
});
const mount = (process.env.INTEROP_ISSUER_PATH ?? '').replace(/\/+$/, '');
const issuer = `http://127.0.0.1:${server.address().port}${mount}`;

const scopes = Object.values(RESOURCES).flatMap((r) => r.scope.split(' '));
const provider = new Provider(issuer, {
  scopes,
  clients: [{
    client_id: 'interop-client',
    client_secret: secret,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: scopes.join(' '),
  }, {
    // The resource server: it only introspects.
    client_id: 'interop-gate',
    client_secret: gateSecret,
    grant_types: [],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks,
  cookies: { keys: ['interop-cookie-key-unused-by-client-credentials'] },
  extraTokenClaims: async (ctx, token) => (token.kind === 'ClientCredentials' ? { roles: ['auditor'] } : undefined),
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    dPoP: { enabled: true },
    introspection: {
      enabled: true,
      // RFC 7662 §4: only the resource server may learn about tokens.
      allowedPolicy: (ctx, client) => client.clientId === 'interop-gate',
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => {
        const info = RESOURCES[resource];
        if (!info) throw new errors.InvalidTarget();
        return {
          scope: info.scope,
          audience: resource,
          accessTokenTTL: 300,
          ...(info.format === 'opaque'
            ? { accessTokenFormat: 'opaque' }
            : { accessTokenFormat: 'jwt', jwt: { sign: { alg: info.alg } } }),
        };
      },
    },
  },
});
provider.proxy = false;
const callback = provider.callback();
server.on('request', (req, res) => {
  if (!mount) return callback(req, res);
  if (req.url !== mount && !req.url.startsWith(`${mount}/`) && !req.url.startsWith(`${mount}?`)) {
    res.writeHead(404).end();
    return undefined;
  }
  // Mounted as Express would: the provider sees the path below the mount point.
  req.originalUrl = req.url;
  req.url = req.url.slice(mount.length) || '/';
  return callback(req, res);
});

process.on('SIGTERM', () => server.close(() => process.exit(0)));
console.log(`ready ${issuer}`);
