// openid-client 6 with DPoP (RFC 9449) against a running authgate (test_openid_client_dpop.py):
// the code flow with PAR (RFC 9126) and a proof at /par and /token, the bound token at protected
// resources (the gateway, the ASGI and the WSGI middleware) with a new proof per call, a code
// redeemed with another key than /par saw, refreshes with the key, with another key and with none,
// and token exchange (RFC 8693) of the bound token.
//
// For each authorization it prints `AUTHORIZE <url>` and reads the callback URL from stdin; at the
// end it prints `RESULT <json>`. It never prints a token or a secret: claims and outcomes only.
import { pathToFileURL } from 'node:url'
import { createInterface } from 'node:readline'

const modules = process.env.NODE_MODULES
const client = await import(pathToFileURL(`${modules}/openid-client/build/index.js`))
const jose = await import(pathToFileURL(`${modules}/jose/dist/webapi/index.js`))
const env = JSON.parse(process.env.RECIPE_INPUT)
const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token'

const waiting = []
createInterface({ input: process.stdin }).on('line', (line) => waiting.shift()(line))
const authorize = (url) => {
  console.log(`AUTHORIZE ${url.href}`)
  return new Promise((resolve) => waiting.push(resolve))
}

// Every request openid-client makes, as the servers saw it: path, status, OAuth error, and what
// the DPoP proof said (its key's thumbprint, htm, htu, whether it had `ath` and a `nonce`).
const requests = []
const recordingFetch = async (url, options) => {
  const proof = new Headers(options.headers).get('dpop')
  const response = await fetch(url, options)
  const seen = { path: new URL(url).pathname, status: response.status }
  if (proof !== null) {
    const header = jose.decodeProtectedHeader(proof)
    const claims = jose.decodeJwt(proof)
    seen.proof = {
      jkt: await jose.calculateJwkThumbprint(header.jwk),
      htm: claims.htm,
      htu: claims.htu,
      ath: 'ath' in claims,
      nonce: 'nonce' in claims,
    }
  }
  if (response.status >= 400) {
    seen.error = (await response.clone().json().catch(() => ({}))).error
    seen.dpop_nonce = response.headers.has('dpop-nonce')
  }
  requests.push(seen)
  return response
}

const claimsOf = (token) => {
  const { aud, sub, scope, client_id: clientId, cnf, act } = jose.decodeJwt(token)
  return { aud, sub, scope, client_id: clientId, cnf, act }
}
const thumbprint = async (keyPair) =>
  jose.calculateJwkThumbprint(await jose.exportJWK(keyPair.publicKey))
const refusal = async (promise) => {
  try {
    await promise
    return { refused: false }
  } catch (err) {
    return { status: err.status, error: err.error, error_description: err.error_description }
  }
}

async function configure(id, secret) {
  const auth = secret === undefined ? client.None() : client.ClientSecretBasic(secret)
  const config = await client.discovery(new URL(env.issuer), id, undefined, auth, {
    execute: [client.allowInsecureRequests], // the test servers are plain http on loopback
  })
  config[client.customFetch] = recordingFetch
  return config
}

// The code flow with a proof by `DPoP` at /par and one by `redeemWith` at /token.
async function codeFlow(config, DPoP, redeemWith = DPoP) {
  const verifier = client.randomPKCECodeVerifier()
  const state = client.randomState()
  const url = await client.buildAuthorizationUrlWithPAR(config, {
    redirect_uri: env.redirect_uri,
    scope: 'openid offline_access read',
    resource: env.api,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
  }, { DPoP })
  const callback = await authorize(url)
  const tokens = await client.authorizationCodeGrant(
    config, new URL(callback), { pkceCodeVerifier: verifier, expectedState: state }, undefined,
    { DPoP: redeemWith },
  )
  return { url, tokens }
}

async function callResources(config, token, DPoP) {
  const out = {}
  for (const [name, base] of Object.entries(env.resources)) {
    const calls = []
    for (let i = 0; i < 2; i += 1) { // a new proof each time
      const answer = await client.fetchProtectedResource(
        config, token, new URL(`${base}/orders`), 'GET', undefined, undefined, { DPoP },
      )
      calls.push({ status: answer.status, body: await answer.json() })
    }
    const bearer = await fetch(`${base}/orders`, { headers: { authorization: `Bearer ${token}` } })
    out[name] = { calls, bearer: bearer.status }
  }
  return out
}

// A public client: its refresh token is bound to its key (RFC 9449 §5).
async function publicClient() {
  const config = await configure(env.public_client_id)
  const key = await client.randomDPoPKeyPair('ES256')
  const DPoP = client.getDPoPHandle(config, key)
  const { url, tokens } = await codeFlow(config, DPoP)
  const resources = await callResources(config, tokens.access_token, DPoP)
  const otherKey = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'))
  // RFC 9449 §10.1: the proof at /par bound the code to the key; another key cannot redeem it.
  const codeWithAnotherKey = await refusal(codeFlow(config, DPoP, otherKey))
  const withOtherKey = await refusal(
    client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP: otherKey }),
  )
  const withoutProof = await refusal(client.refreshTokenGrant(config, tokens.refresh_token))
  const refreshed = await client.refreshTokenGrant(
    config, tokens.refresh_token, undefined, { DPoP },
  )
  const afterRefresh = await client.fetchProtectedResource(
    config, refreshed.access_token, new URL(`${env.resources.gateway}/orders`), 'GET',
    undefined, undefined, { DPoP },
  )
  return {
    jkt: await thumbprint(key),
    front_channel: [...url.searchParams.keys()].sort(),
    token_type: tokens.token_type,
    claims: claimsOf(tokens.access_token),
    id_token_sub: tokens.claims()?.sub,
    resources,
    code_with_another_key: codeWithAnotherKey,
    refresh_with_another_key: withOtherKey,
    refresh_without_proof: withoutProof,
    refreshed: {
      token_type: refreshed.token_type,
      claims: claimsOf(refreshed.access_token),
      rotated: refreshed.refresh_token !== tokens.refresh_token,
      gateway: afterRefresh.status,
    },
  }
}

// A confidential client that may exchange tokens (RFC 8693) into the Billing API.
async function confidentialClient() {
  const config = await configure(env.confidential_client_id, env.confidential_client_secret)
  const key = await client.randomDPoPKeyPair('ES256')
  const DPoP = client.getDPoPHandle(config, key)
  const { tokens } = await codeFlow(config, DPoP)
  const refreshed = await client.refreshTokenGrant(
    config, tokens.refresh_token, undefined, { DPoP },
  )
  const exchanged = await client.genericGrantRequest(config, EXCHANGE, {
    subject_token: refreshed.access_token,
    subject_token_type: ACCESS_TOKEN,
    resource: env.billing,
    scope: 'read',
  }, { DPoP })
  return {
    jkt: await thumbprint(key),
    token_type: tokens.token_type,
    claims: claimsOf(tokens.access_token),
    refreshed: { token_type: refreshed.token_type, claims: claimsOf(refreshed.access_token) },
    exchanged: {
      token_type: exchanged.token_type,
      issued_token_type: exchanged.issued_token_type,
      refresh_token: 'refresh_token' in exchanged,
      scope: exchanged.scope,
      claims: claimsOf(exchanged.access_token),
    },
  }
}

const result = { public: await publicClient(), confidential: await confidentialClient() }
console.log(`RESULT ${JSON.stringify({ ...result, requests })}`)
process.exit(0)
