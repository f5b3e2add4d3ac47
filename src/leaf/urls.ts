// The rule for every URL the guard fetches from or names as an identity provider's (JWK Sets, metadata, introspection,
// security events): a leaf, so the policy schema, the token verifiers and the SET receiver share one copy.

/** Whether `uri` is https, or plain http to a loopback address only (localhost, [::1], 127.x.x.x). */
export function isLoopbackOrHttps(uri: string): boolean {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return false;
  }
  if (url.protocol === 'https:') return true;
  return url.protocol === 'http:' && (url.hostname === 'localhost' || url.hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(url.hostname));
}
