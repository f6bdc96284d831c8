// youtubei.js through potproxy: a player request (key order unlike yt-dlp's, `alt=json` in the
// query) and a media fetch, with undici's ProxyAgent. Trust comes from NODE_EXTRA_CA_CERTS.
// Usage: node player.mjs <proxy-url> <video-id>
// Prints one JSON line: {status, formatUrl, bytes}.
import { ProxyAgent, fetch as undiciFetch } from 'undici';
import { Innertube, ClientType } from 'youtubei.js';

const [proxy, videoId] = process.argv.slice(2);
const dispatcher = new ProxyAgent(proxy);
const fetchViaProxy = (input, init = {}) => {
  const url = typeof input === 'string' ? input : input.url ?? String(input);
  const opts = { ...init, dispatcher };
  if (input && typeof input === 'object' && !(input instanceof URL) && input.method) {
    opts.method = opts.method ?? input.method;
    opts.headers = opts.headers ?? input.headers;
    if (!opts.body && input.body) opts.body = input.body;
    opts.duplex = 'half';
  }
  return undiciFetch(url, opts);
};

const yt = await Innertube.create({
  fetch: fetchViaProxy,
  retrieve_player: false,
  generate_session_locally: true,
  client_type: ClientType.MWEB,
  visitor_data: 'CgtGYWtlVmlzaXRvcijAgICAxjIKCgJERRIEEgAgNg%3D%3D',
});
const info = await yt.getBasicInfo(videoId, { client: 'MWEB' });
const format = info.chooseFormat({ type: 'audio', quality: 'best' });
const url = await format.decipher(undefined);
const res = await fetchViaProxy(url, { headers: { range: 'bytes=0-999' } });
const body = new Uint8Array(await res.arrayBuffer());
console.log(JSON.stringify({ status: res.status, formatUrl: url, bytes: body.length, first: Array.from(body.slice(0, 8)) }));
process.exit(0);
