// A local OpenID Connect provider for synthscope's sign-in tests: loopback only, in memory, never for real use.
//
//   node provider.mjs PORT REDIRECT_URI [CLIENT_ID] [CLIENT_SECRET]
//
// One confidential client. The development login form (devInteractions) accepts any login name and any
// password; the account's email is the login name, so a test signs in as whoever it wants to be.
// Prints "ready ISSUER" on stdout once it listens.
import Provider from 'oidc-provider';

const [port, redirectUri, clientId = 'synthscope-test', clientSecret = 'synthscope-test-secret'] = process.argv.slice(2);
if (!port || !redirectUri) {
  console.error('usage: node provider.mjs PORT REDIRECT_URI [CLIENT_ID] [CLIENT_SECRET]');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    post_logout_redirect_uris: [redirectUri],
    response_types: ['code'],
    grant_types: ['authorization_code'],
  }],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  // Streamlit reads the user from the ID token, so the email belongs there, not only at /userinfo.
  conformIdTokenClaims: false,
  cookies: { keys: ['synthscope-test-only-cookie-key'] },
  features: { devInteractions: { enabled: true } },
  async findAccount(_ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return { sub, email: sub, email_verified: !sub.endsWith('.unverified'), name: sub.split('@')[0] };
      },
    };
  },
});
// Streamlit asks for prompt=select_account, which this provider does not know: the login form stands in for an
// account chooser, so every sign-in asks who you are (a test signs in as one user, then as another).
provider.use(async (ctx, next) => {
  if (ctx.path === '/auth' && ctx.query.prompt === 'select_account') {
    ctx.query = { ...ctx.query, prompt: 'login' };
  }
  await next();
});
provider.on('server_error', (_ctx, err) => console.error('server_error', err));

provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
