// Test-only OpenID Connect provider for catalog/tests/oidc.rs: the maintained npm package
// `oidc-provider` on 127.0.0.1, one confidential client that must use PKCE (S256), its
// built-in development login and consent pages (any login name with any password signs in
// as that name). Prints `ISSUER <url>` on stdout once it listens.
//
// Usage: node provider.mjs <redirect_uri> <client_id> <client_secret> <RS256|ES256>
import http from 'node:http';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const [redirectUri, clientId, clientSecret, alg] = process.argv.slice(2);
if (!redirectUri || !clientId || !clientSecret || !['RS256', 'ES256'].includes(alg)) {
  console.error('usage: node provider.mjs <redirect_uri> <client_id> <client_secret> <RS256|ES256>');
  process.exit(2);
}

const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: alg,
    }],
    // PKCE for every client, confidential ones included (the default asks it of public
    // clients only).
    pkce: { required: () => true },
    jwks: { keys: [{ ...rsa, kid: 'rsa-1', alg: 'RS256', use: 'sig' }, { ...ec, kid: 'ec-1', alg: 'ES256', use: 'sig' }] },
    claims: { openid: ['sub'], profile: ['preferred_username'] },
    // Profile claims in the ID token itself, not only at the userinfo endpoint.
    conformIdTokenClaims: false,
    async findAccount(ctx, sub) {
      return { accountId: sub, async claims() { return { sub, preferred_username: sub }; } };
    },
  });
  provider.on('server_error', (ctx, err) => console.error('provider server_error', err));
  server.on('request', provider.callback());
  console.log(`ISSUER ${issuer}`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
