// googlevideo's own SabrStream (the reference SABR client) downloading from the test fake
// (tests/sabr.rs). Straight from the fake: every YouTube and googlevideo name is connected to
// the fake's port and the fake's CA is trusted. With SABR_PROXY=<proxy-url>, through that proxy
// instead (trust then comes from NODE_EXTRA_CA_CERTS; port and CA arguments are unused).
// Usage: node sabr.mjs <fake-port> <ca-pem-path> <video-id> <po-token> <audio|av> <out-dir>
// Writes <out-dir>/audio.bin and <out-dir>/video.bin; prints one JSON line:
// {audioItag, videoItag, audioBytes, videoBytes, reloads}.
import { readFileSync, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import { Agent, ProxyAgent, buildConnector, fetch as undiciFetch } from 'undici';
import { SabrStream } from 'googlevideo/sabr-stream';
import { buildSabrFormat, EnabledTrackTypes } from 'googlevideo/utils';

const [port, caPath, videoId, poToken, mode, outDir] = process.argv.slice(2);
function direct() {
  const connector = buildConnector({ ca: readFileSync(caPath, 'utf8') });
  return new Agent({
    connect: (opts, callback) => connector(
      { ...opts, hostname: '127.0.0.1', port: Number(port), servername: opts.servername || opts.hostname },
      callback
    )
  });
}
const dispatcher = process.env.SABR_PROXY ? new ProxyAgent(process.env.SABR_PROXY) : direct();
const fetchFake = (input, init = {}) => undiciFetch(input, { ...init, dispatcher });

const CLIENT = { clientName: 'WEB', clientVersion: '2.20260512.00.00' };

async function player(reloadPlaybackContext) {
  const body = { context: { client: CLIENT }, videoId, playbackContext: {} };
  if (reloadPlaybackContext) body.playbackContext.reloadPlaybackContext = reloadPlaybackContext;
  const res = await fetchFake('https://www.youtube.com/youtubei/v1/player?prettyPrint=false', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body)
  });
  if (!res.ok) throw new Error(`player: ${res.status}`);
  return res.json();
}

const first = await player();
const streaming = first.streamingData;
const ustreamer = (p) => p.playerConfig.mediaCommonConfig.mediaUstreamerRequestConfig.videoPlaybackUstreamerConfig;

const stream = new SabrStream({
  fetch: fetchFake,
  formats: streaming.adaptiveFormats.map(buildSabrFormat),
  serverAbrStreamingUrl: streaming.serverAbrStreamingUrl,
  videoPlaybackUstreamerConfig: ustreamer(first),
  poToken,
  clientInfo: { clientName: 1, clientVersion: CLIENT.clientVersion }
});

let reloads = 0;
let failure;
stream.on('reloadPlayerResponse', async (ctx) => {
  reloads += 1;
  try {
    const fresh = await player(ctx);
    stream.setStreamingURL(fresh.streamingData.serverAbrStreamingUrl);
    stream.setUstreamerConfig(ustreamer(fresh));
  } catch (e) {
    failure = e;
  }
});

const audioOnly = mode === 'audio';
const { audioStream, videoStream, selectedFormats } = await stream.start({
  audioFormat: 140,
  videoFormat: 137,
  enabledTrackTypes: audioOnly ? EnabledTrackTypes.AUDIO_ONLY : EnabledTrackTypes.VIDEO_AND_AUDIO,
  maxRetries: 4
});

async function save(readable, file) {
  const out = createWriteStream(path.join(outDir, file));
  let bytes = 0;
  for await (const chunk of readable) {
    bytes += chunk.length;
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return bytes;
}

const [audioBytes, videoBytes] = await Promise.all([
  save(audioStream, 'audio.bin'),
  save(videoStream, 'video.bin')
]);
if (failure) throw failure;
console.log(JSON.stringify({
  audioItag: selectedFormats.audioFormat.itag,
  videoItag: selectedFormats.videoFormat.itag,
  audioBytes,
  videoBytes,
  reloads
}));
process.exit(0);
