// openid-client 6 pushes an authorization request (RFC 9126) to a running authgate and completes
// the code flow with PKCE (test_openid_client_par.py). Prints the authorization URL, reads the
// callback URL from stdin, prints one JSON line of outcomes; never prints a secret or a token.
import { pathToFileURL } from 'node:url'
import { createInterface } from 'node:readline'

const modules = process.env.NODE_MODULES
const client = await import(pathToFileURL(`${modules}/openid-client/build/index.js`))
const env = JSON.parse(process.env.RECIPE_INPUT)
const config = await client.discovery(
  new URL(env.issuer), env.client_id, undefined, client.ClientSecretBasic(env.client_secret),
  { execute: [client.allowInsecureRequests] }, // the test server is plain http on loopback
)
const verifier = client.randomPKCECodeVerifier()
const state = client.randomState()
const url = await client.buildAuthorizationUrlWithPAR(config, {
  redirect_uri: env.redirect_uri,
  scope: 'openid read',
  code_challenge: await client.calculatePKCECodeChallenge(verifier),
  code_challenge_method: 'S256',
  state,
})
console.log(url.href)
const lines = createInterface({ input: process.stdin })
const callback = await new Promise((resolve) => lines.once('line', resolve))
lines.close()
const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
  pkceCodeVerifier: verifier,
  expectedState: state,
})
console.log(JSON.stringify({
  front_channel: [...url.searchParams.keys()].sort(),
  token_type: tokens.token_type,
  scope: tokens.scope,
  id_token_sub: typeof tokens.claims()?.sub,
}))
