// URL checks shared by the layers that reach out to an identity provider (introspection, security events):
// a leaf so both can use one copy without importing each other.

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
