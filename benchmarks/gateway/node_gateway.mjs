// The reference gateway from the common "API gateway with JWT in Node.js" recipe: Express, a
// jsonwebtoken check with keys from jwks-rsa, and http-proxy-middleware in front of the upstream.
// The key is parsed once (KeyObject cached per kid), not on every request, and upstream
// connections are kept alive, so that the comparison is with a well-tuned Node gateway.
// Configuration comes from the environment: PORT, JWKS_URI, ISSUER, AUDIENCE, UPSTREAM.
import http from "node:http";
import { createPublicKey } from "node:crypto";

import express from "express";
import jwt from "jsonwebtoken";
import jwksClient from "jwks-rsa";
import { createProxyMiddleware } from "http-proxy-middleware";

const { PORT, JWKS_URI, ISSUER, AUDIENCE, UPSTREAM } = process.env;

const jwks = jwksClient({ jwksUri: JWKS_URI, cache: true, rateLimit: true });
const keys = new Map(); // kid -> KeyObject, parsed once

async function keyFor(kid) {
  let key = keys.get(kid);
  if (key === undefined) {
    const signingKey = await jwks.getSigningKey(kid);
    key = createPublicKey(signingKey.getPublicKey());
    keys.set(kid, key);
  }
  return key;
}

const app = express();
app.disable("x-powered-by");
app.disable("etag");

app.use(async (req, res, next) => {
  const header = req.headers.authorization ?? "";
  if (!header.startsWith("Bearer ")) {
    res.status(401).json({ error: "missing token" });
    return;
  }
  const token = header.slice(7);
  try {
    const decoded = jwt.decode(token, { complete: true });
    const key = await keyFor(decoded?.header?.kid);
    const claims = jwt.verify(token, key, {
      algorithms: ["RS256"],
      audience: AUDIENCE,
      issuer: ISSUER,
    });
    req.headers["x-auth-subject"] = claims.sub;
    req.headers["x-auth-scopes"] = claims.scope ?? "";
    delete req.headers.authorization;
    next();
  } catch {
    res.status(401).json({ error: "invalid token" });
  }
});

app.use(
  "/",
  createProxyMiddleware({
    target: UPSTREAM,
    changeOrigin: true,
    agent: new http.Agent({ keepAlive: true, maxSockets: 256 }),
  }),
);

app.listen(Number(PORT), "127.0.0.1", () => {
  console.log(`listening on ${PORT}`);
});
