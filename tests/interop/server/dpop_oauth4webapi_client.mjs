// oauth4webapi (the lower-level library under openid-client, driven call by call) with DPoP
// against a running authgate (test_openid_client_dpop.py): a public client pushes its request to
// /par with a proof (RFC 9126, RFC 9449 §10.1), redeems the code with a proof, calls the gateway
// with the bound token, and refreshes with the key. Server nonces (§8) are handled the way the
// library documents: on `isDPoPNonceError` the request is sent again (the handle kept the nonce).
//
// Prints `AUTHORIZE <url>`, reads the callback URL from stdin, prints `RESULT <json>` (claims and
// outcomes only, never a token).
import { pathToFileURL } from 'node:url'
import { createInterface } from 'node:readline'

const modules = process.env.NODE_MODULES
const oauth = await import(pathToFileURL(`${modules}/oauth4webapi/build/index.js`))
const jose = await import(pathToFileURL(`${modules}/jose/dist/webapi/index.js`))
const env = JSON.parse(process.env.RECIPE_INPUT)
const insecure = { [oauth.allowInsecureRequests]: true } // loopback http in tests only

const issuer = new URL(env.issuer)
const as = await oauth.processDiscoveryResponse(
  issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...insecure }),
)
const client = { client_id: env.public_client_id }
const auth = oauth.None()
const keyPair = await oauth.generateKeyPair('ES256')
const DPoP = oauth.DPoP(client, keyPair)
let nonceRetries = 0

// Send, process; once more when the server asks for its nonce (the handle cached it).
async function withNonce(send, process) {
  try {
    return await process(await send())
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) throw err
    nonceRetries += 1
    return process(await send())
  }
}

const verifier = oauth.generateRandomCodeVerifier()
const state = oauth.generateRandomState()
const params = new URLSearchParams({
  redirect_uri: env.redirect_uri,
  response_type: 'code',
  scope: 'openid offline_access read',
  resource: env.api,
  code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
  code_challenge_method: 'S256',
  state,
})
const pushed = await withNonce(
  () => oauth.pushedAuthorizationRequest(as, client, auth, params, { DPoP, ...insecure }),
  (response) => oauth.processPushedAuthorizationResponse(as, client, response),
)
const url = new URL(as.authorization_endpoint)
url.searchParams.set('client_id', client.client_id)
url.searchParams.set('request_uri', pushed.request_uri)
console.log(`AUTHORIZE ${url.href}`)
const lines = createInterface({ input: process.stdin })
const callback = await new Promise((resolve) => lines.once('line', resolve))
lines.close()

const callbackParams = oauth.validateAuthResponse(as, client, new URL(callback), state)
const tokens = await withNonce(
  () => oauth.authorizationCodeGrantRequest(
    as, client, auth, callbackParams, env.redirect_uri, verifier, { DPoP, ...insecure },
  ),
  (response) => oauth.processAuthorizationCodeResponse(as, client, response),
)
const resource = async (token) => {
  const answer = await oauth.protectedResourceRequest(
    token, 'GET', new URL(`${env.resources.gateway}/orders`), undefined, undefined,
    { DPoP, ...insecure },
  )
  return answer.status
}
const calls = [await resource(tokens.access_token), await resource(tokens.access_token)]
const refreshed = await withNonce(
  () => oauth.refreshTokenGrantRequest(
    as, client, auth, tokens.refresh_token, { DPoP, ...insecure },
  ),
  (response) => oauth.processRefreshTokenResponse(as, client, response),
)
console.log(`RESULT ${JSON.stringify({
  jkt: await jose.calculateJwkThumbprint(await jose.exportJWK(keyPair.publicKey)),
  expires_in: typeof pushed.expires_in,
  token_type: tokens.token_type,
  cnf: jose.decodeJwt(tokens.access_token).cnf,
  calls,
  refreshed: {
    token_type: refreshed.token_type,
    cnf: jose.decodeJwt(refreshed.access_token).cnf,
    gateway: await resource(refreshed.access_token),
  },
  nonce_retries: nonceRetries,
})}`)
