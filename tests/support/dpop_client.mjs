// An independent DPoP client (npm oauth4webapi, RFC 9449): client credentials at an authorization
// server with a proof of a new ES256 key, then calls to a protected resource with a new proof each
// (ath, htm, htu), and the same token sent as a plain Bearer token. Prints one JSON line.
//
// node dpop_client.mjs ISSUER CLIENT_ID CLIENT_SECRET RESOURCE SCOPE RESOURCE_URL
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const entry = path.join(here, '..', 'node', 'node_modules', 'oauth4webapi', 'build', 'index.js');
const oauth = await import(pathToFileURL(entry).href);

const [issuerUrl, clientId, clientSecret, resource, scope, resourceUrl] = process.argv.slice(2);
const insecure = { [oauth.allowInsecureRequests]: true }; // loopback http in tests only
const issuer = new URL(issuerUrl);
const as = await oauth.processDiscoveryResponse(
  issuer,
  await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
);
const client = { client_id: clientId };
const keyPair = await oauth.generateKeyPair('ES256');
const DPoP = oauth.DPoP(client, keyPair);

const grant = () => oauth.clientCredentialsGrantRequest(
  as, client, oauth.ClientSecretBasic(clientSecret), { resource, scope }, { DPoP, ...insecure },
);
let response = await grant();
let tokens;
try {
  tokens = await oauth.processClientCredentialsResponse(as, client, response);
} catch (err) {
  if (!oauth.isDPoPNonceError(err)) throw err;
  tokens = await oauth.processClientCredentialsResponse(as, client, await grant());
}

const calls = [];
for (let i = 0; i < 3; i += 1) {
  const answer = await oauth.protectedResourceRequest(
    tokens.access_token, 'GET', new URL(resourceUrl), undefined, undefined, { DPoP, ...insecure },
  );
  calls.push({ status: answer.status, body: await answer.text() });
}
const bearer = await fetch(resourceUrl, {
  headers: { authorization: `Bearer ${tokens.access_token}` },
});
const [, payload] = tokens.access_token.split('.');
const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
console.log(JSON.stringify({
  token_type: tokens.token_type,
  cnf: claims.cnf,
  algs: as.dpop_signing_alg_values_supported,
  calls,
  bearer: { status: bearer.status, challenge: bearer.headers.get('www-authenticate') },
}));
