import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VliveError } from '../src/errors.js';
import { MAX_URL_LENGTH, liveProtocolOf, maskUrl, parsePushTarget, parseRtmpBase, parseSourceUrl } from '../src/media/urls.js';

function rejects(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof VliveError, `expected VliveError, got ${String(err)}`);
    assert.equal(err.code, 'URL_NOT_ALLOWED');
    assert.match(err.message, pattern);
    return true;
  });
}

describe('parseSourceUrl', () => {
  it('accepts rtmp and rtmps URLs with app and stream', () => {
    const a = parseSourceUrl('rtmp://cdn.example/live/abc123');
    assert.deepEqual({ ...a }, { url: 'rtmp://cdn.example/live/abc123', scheme: 'rtmp', host: 'cdn.example', port: null });
    const b = parseSourceUrl('rtmps://user:pw@10.0.0.5:4443/app/inst/key_1-2?token=x');
    assert.equal(b.scheme, 'rtmps');
    assert.equal(b.host, '10.0.0.5');
    assert.equal(b.port, 4443);
    assert.equal(parseSourceUrl('RTMP://[::1]:1935/live/s').scheme, 'rtmp');
  });

  it('says "not supported yet" for planned schemes and "not allowed" for others', () => {
    rejects(() => parseSourceUrl('rtsps://cam.local/stream'), /rtsps:\/\/ is not supported yet/);
    rejects(() => parseSourceUrl('file:///etc/passwd'), /file:\/\/ is not allowed/);
    rejects(() => parseSourceUrl('javascript:alert(1)'), /not allowed/);
  });

  it('tells the live protocol from the URL', () => {
    const of = (u: string): string => liveProtocolOf(parseSourceUrl(u));
    assert.equal(of('rtmp://h/live/s'), 'rtmp');
    assert.equal(of('rtmps://h/live/s'), 'rtmp');
    assert.equal(of('rtsp://cam.local/stream'), 'rtsp');
    assert.equal(of('srt://h:9000?streamid=x'), 'srt');
    assert.equal(of('https://h/path/x.M3U8?token=1'), 'hls');
    assert.equal(of('http://h/live/x.flv'), 'httpflv');
    assert.equal(maskUrl('srt://h:9000?streamid=x&passphrase=secret'), 'srt://h:9000?***');
    assert.equal(maskUrl('rtsp://user:pw@cam.local/stream'), 'rtsp://user:***@cam.local/stream');
  });

  it('rejects malformed URLs and missing hosts or stream names', () => {
    rejects(() => parseSourceUrl(''), /required/);
    rejects(() => parseSourceUrl('not a url'), /whitespace/);
    rejects(() => parseSourceUrl('live/abc'), /not a valid absolute URL/);
    rejects(() => parseSourceUrl('rtmp:///live/abc'), /no host/);
    rejects(() => parseSourceUrl('rtmp:cdn/live/abc'), /no host/);
    rejects(() => parseSourceUrl('rtmp://cdn.example/live'), /application and a stream name/);
    rejects(() => parseSourceUrl('rtmp://cdn.example:99999/live/x'), /not a valid absolute URL/);
    rejects(() => parseSourceUrl('rtmp://cdn.example/live/x#frag'), /fragment/);
    rejects(() => parseSourceUrl(42), /required/);
  });

  it('rejects hostile strings', () => {
    rejects(() => parseSourceUrl('rtmp://h/live/x ! filesink location=/tmp/p'), /U\+0020/);
    rejects(() => parseSourceUrl('rtmp://h/live/x\n! filesink location=/tmp/p'), /U\+000A/);
    rejects(() => parseSourceUrl('rtmp://h/live/x\r\n'), /control or whitespace/);
    rejects(() => parseSourceUrl('rtmp://h/live/x\0'), /U\+0000/);
    rejects(() => parseSourceUrl('rtmp://h/live/x\t'), /U\+0009/);
    rejects(() => parseSourceUrl('rtmp://h/live/"x"'), /character "\\""/);
    rejects(() => parseSourceUrl("rtmp://h/live/x'y"), /character "'"/);
    rejects(() => parseSourceUrl('rtmp://h/live/x\\y'), /character/);
    rejects(() => parseSourceUrl('rtmp://h/live/x`id`'), /character/);
    rejects(() => parseSourceUrl('rtmp://h/live/x\u2028'), /U\+2028/);
    rejects(() => parseSourceUrl('rtmp://h\u00a0/live/x'), /U\+00A0/);
    rejects(() => parseSourceUrl('rtmp://hé/live/x'), /non-ASCII/);
    rejects(() => parseSourceUrl(`rtmp://h/live/${'a'.repeat(MAX_URL_LENGTH)}`), /longer than 2048/);
  });
});

describe('parsePushTarget', () => {
  it('accepts rtmp(s) with a stream key, query included', () => {
    assert.equal(parsePushTarget('rtmp://a.rtmp.youtube.com/live2/xxxx-yyyy').host, 'a.rtmp.youtube.com');
    assert.equal(parsePushTarget('rtmps://live.example:443/app/key?backup=1').scheme, 'rtmps');
  });

  it('rejects anything that is not rtmp(s) or srt, or has no key', () => {
    rejects(() => parsePushTarget('rtsp://h:9000/x'), /rtsp:\/\/ is not allowed here; use one of rtmp:\/\/, rtmps:\/\/, srt:\/\//);
    rejects(() => parsePushTarget('http://h/live/x'), /not allowed/);
    rejects(() => parsePushTarget('rtmp://h/live'), /application and a stream name/);
    rejects(() => parsePushTarget('rtmp://h/live/x y'), /whitespace/);
  });
});

describe('parsePushTarget: srt://', () => {
  const badInput = (url: string, pattern: RegExp): void => {
    assert.throws(() => parsePushTarget(url), (err: unknown) => {
      assert.ok(err instanceof VliveError, `expected VliveError, got ${String(err)}`);
      assert.equal(err.code, 'BAD_USER_INPUT');
      assert.equal(err.field, 'pushTargets');
      assert.match(err.message, pattern);
      return true;
    });
  };

  it('accepts caller targets with passphrase, latency, pbkeylen and streamid', () => {
    const t = parsePushTarget('srt://ingest.example:9000?passphrase=0123456789&latency=200&pbkeylen=32&streamid=publish%3Akey');
    assert.deepEqual({ ...t }, { url: 'srt://ingest.example:9000?passphrase=0123456789&latency=200&pbkeylen=32&streamid=publish%3Akey', scheme: 'srt', host: 'ingest.example', port: 9000 });
    assert.equal(parsePushTarget('srt://10.0.0.1:7001').scheme, 'srt');
    assert.equal(parsePushTarget('srt://h:7001?mode=caller').scheme, 'srt');
    assert.equal(maskUrl('srt://h:7001?passphrase=0123456789'), 'srt://h:7001?***');
  });

  it('refuses a URL we cannot call: no port, a path, a user', () => {
    rejects(() => parsePushTarget('srt://h'), /needs a port/);
    rejects(() => parsePushTarget('srt://h:9000/live/key'), /has no path/);
    rejects(() => parsePushTarget('srt://u:p@h:9000'), /no user or password/);
  });

  it('refuses unknown, repeated and out-of-range options with BAD_USER_INPUT naming the field', () => {
    badInput('srt://h:9000?foo=1', /option "foo" is not supported; use passphrase, latency, pbkeylen, streamid/);
    badInput('srt://h:9000?mode=listener', /callers/);
    badInput('srt://h:9000?latency=1&latency=2', /given twice/);
    badInput('srt://h:9000?passphrase=short', /passphrase must be 10 to 79 characters/);
    badInput(`srt://h:9000?passphrase=${'p'.repeat(80)}`, /passphrase must be 10 to 79/);
    badInput('srt://h:9000?latency=5', /latency must be a whole number of ms from 20 to 8000/);
    badInput('srt://h:9000?latency=2e3', /latency/);
    badInput('srt://h:9000?passphrase=0123456789&pbkeylen=20', /pbkeylen must be 16, 24, 32/);
    badInput('srt://h:9000?pbkeylen=16', /needs a passphrase/);
    badInput(`srt://h:9000?streamid=${'s'.repeat(513)}`, /streamid must be 1 to 512/);
  });
});

describe('parseRtmpBase', () => {
  it('takes an application URL without stream', () => {
    assert.equal(parseRtmpBase('rtmp://origin:1935/live', 'rtmpBaseUrl').url, 'rtmp://origin:1935/live');
    rejects(() => parseRtmpBase('rtmp://origin', 'rtmpBaseUrl'), /needs an application/);
    rejects(() => parseRtmpBase('rtmp://origin/live/', 'rtmpBaseUrl'), /must not end/);
  });
});

describe('maskUrl', () => {
  it('masks the stream key, password and query', () => {
    assert.equal(maskUrl('rtmp://cdn.example/live/abc123'), 'rtmp://cdn.example/live/***');
    assert.equal(maskUrl('rtmp://cdn.example:1935/app/inst/abc123/'), 'rtmp://cdn.example:1935/app/inst/***');
    assert.equal(maskUrl('rtmps://bob:s3cret@cdn.example/live/key?token=t'), 'rtmps://bob:***@cdn.example/live/***?***');
    assert.equal(maskUrl('rtmp://cdn.example/live'), 'rtmp://cdn.example/live');
    assert.equal(maskUrl('srt://h:9000?streamid=publish:key&passphrase=p'), 'srt://h:9000?***');
    assert.equal(maskUrl('https://h/path/index.m3u8?sig=abc'), 'https://h/path/index.m3u8?***');
  });

  it('never leaks anything it cannot parse', () => {
    assert.equal(maskUrl('garbage with key abc123'), '***');
    assert.equal(maskUrl(''), '***');
    assert.doesNotMatch(maskUrl('rtmp://h/live/abc123'), /abc123/);
  });
});
