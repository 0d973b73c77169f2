/**
 * Setting GStreamer's rtmp2src URL, in one place for every pipeline that
 * reads RTMP (relay source, tap).
 *
 * Part of src/gst/: imports native.ts only.
 */
import { NativeError, type GstElement } from './native.js';

/**
 * Sets an rtmp:// URL as `location` and checks GStreamer parsed it:
 * rtmp2src keeps a blank location (host null) when the URL does not
 * parse, and would then connect to its defaults.
 */
export function setRtmpLocation(el: GstElement, url: string, role: string): void {
  el.set('location', url);
  if (typeof el.get('host') !== 'string' || typeof el.get('stream') !== 'string') {
    throw new NativeError('PROPERTY_REJECTED', `${role}: GStreamer could not parse the RTMP URL`);
  }
}
