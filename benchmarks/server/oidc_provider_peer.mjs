// The peer for benchmarks/server: npm oidc-provider configured like authgate's benchmark setup:
// client_credentials, client_secret_basic, RFC 8707 resource indicators, JWT access tokens
// (RS256 for https://rs256.bench.test, ES256 for https://es256.bench.test), scope "read".
// Usage: node oidc_provider_peer.mjs PORT CLIENT_ID CLIENT_SECRET
import { generateKeyPairSync } from 'node:crypto';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const entry = path.join(here, '..', '..', 'tests', 'node', 'node_modules', 'oidc-provider', 'lib', 'index.js');
const { default: Provider } = await import(pathToFileURL(entry).href);

const [port, clientId, clientSecret] = process.argv.slice(2);
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
const ALGS = { 'https://rs256.bench.test': 'RS256', 'https://es256.bench.test': 'ES256' };

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [{ ...rsa, kid: 'rsa', alg: 'RS256', use: 'sig' }, { ...ec, kid: 'ec', alg: 'ES256', use: 'sig' }] },
  cookies: { keys: ['benchmark-cookie-key-not-used-by-client-credentials'] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'https://rs256.bench.test',
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => {
        const alg = ALGS[resource];
        if (!alg) throw new Provider.errors.InvalidTarget();
        return { scope: 'read', audience: resource, accessTokenTTL: 300, accessTokenFormat: 'jwt', jwt: { sign: { alg } } };
      },
    },
  },
});
provider.proxy = false;
provider.listen(Number(port), '127.0.0.1', () => console.log('ready'));
