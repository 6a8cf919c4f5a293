// The Node recipes of docs/clients.md against a running authgate (test_serve_processes.py).
// Prints one JSON line of outcomes; never prints a secret or a token.
import { pathToFileURL } from 'node:url'

const modules = process.env.NODE_MODULES
const client = await import(pathToFileURL(`${modules}/openid-client/build/index.js`))
const oauth = await import(pathToFileURL(`${modules}/oauth4webapi/build/index.js`))
const env = JSON.parse(process.env.RECIPE_INPUT)
const issuer = new URL(env.issuer)
const params = { scope: 'orders:read', resource: env.api }
const insecure = { [oauth.allowInsecureRequests]: true } // the test server is plain http on loopback
const out = {}

// openid-client with a secret string sends client_secret_post: the answer names the method.
let config = await client.discovery(issuer, env.basic_id, env.basic_secret, undefined, {
  execute: [client.allowInsecureRequests],
})
try {
  await client.clientCredentialsGrant(config, params)
  out.openid_client_default = 'accepted'
} catch (error) {
  out.openid_client_default = (await error.response.json()).error_description
}
config = await client.discovery(
  issuer, env.basic_id, undefined, client.ClientSecretBasic(env.basic_secret),
  { execute: [client.allowInsecureRequests] },
)
out.openid_client_basic = typeof (await client.clientCredentialsGrant(config, params)).access_token

const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, insecure))
let c = { client_id: env.basic_id }
let response = await oauth.clientCredentialsGrantRequest(
  as, c, oauth.ClientSecretBasic(env.basic_secret), new URLSearchParams(params), insecure,
)
out.oauth4webapi_basic = typeof (await oauth.processClientCredentialsResponse(as, c, response)).access_token

const key = await crypto.subtle.importKey(
  'jwk', env.jwt_key, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['sign'],
)
c = { client_id: env.jwt_id }
out.oauth4webapi_private_key_jwt = []
for (let i = 0; i < 2; i++) { // each assertion has its own jti
  response = await oauth.clientCredentialsGrantRequest(
    as, c, oauth.PrivateKeyJwt({ key, kid: env.jwt_key.kid }),
    new URLSearchParams({ resource: env.api }), insecure,
  )
  const tokens = await oauth.processClientCredentialsResponse(as, c, response)
  out.oauth4webapi_private_key_jwt.push(typeof tokens.access_token)
}
console.log(JSON.stringify(out))
