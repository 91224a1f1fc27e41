// The peer of Keyway's benchmark: the same job done the usual Node way.
// Auth0's express-openid-connect is the OpenID Connect client (authorization
// code + PKCE, its default encrypted-cookie session), http-proxy-middleware
// forwards /api/* to the upstream with the session's access token.
//
// Settings come from the environment (the benchmark sets them):
//   PEER_PORT        port to listen on (127.0.0.1)
//   PEER_ISSUER      the OpenID provider's issuer
//   PEER_UPSTREAM    the upstream base URL, e.g. http://127.0.0.1:9000
//   PEER_CLIENT_ID, PEER_CLIENT_SECRET  the client registered at the provider
// It prints `READY http://127.0.0.1:<port>` on stdout once listening.
import express from 'express';
import eoc from 'express-openid-connect';
import { createProxyMiddleware } from 'http-proxy-middleware';

const { auth, requiresAuth } = eoc;
const port = Number.parseInt(process.env.PEER_PORT ?? '0', 10) || 0;
const baseURL = `http://127.0.0.1:${port}`;

const app = express();
app.use(
  auth({
    issuerBaseURL: process.env.PEER_ISSUER,
    baseURL,
    clientID: process.env.PEER_CLIENT_ID,
    clientSecret: process.env.PEER_CLIENT_SECRET,
    // Encrypts the session cookie (a benchmark-only value).
    secret: 'keyway-bench-peer-cookie-secret-0123456789abcdef',
    authRequired: false,
    idpLogout: false,
    authorizationParams: {
      response_type: 'code',
      scope: 'openid profile email offline_access',
    },
  }),
);

app.use(
  '/api',
  requiresAuth(),
  createProxyMiddleware({
    target: process.env.PEER_UPSTREAM,
    changeOrigin: true,
    on: {
      proxyReq: (proxyReq, req) => {
        proxyReq.removeHeader('cookie');
        proxyReq.setHeader('authorization', `Bearer ${req.oidc.accessToken.access_token}`);
      },
    },
  }),
);

const server = app.listen(port, '127.0.0.1', () => {
  process.stdout.write(`READY http://127.0.0.1:${server.address().port}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
