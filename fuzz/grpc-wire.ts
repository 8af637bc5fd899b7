// gRPC's wire format for the fuzz target, by hand: the 5-byte message prefix and the Echo service's Msg (protobuf
// fields 1 text, 2 n, 3 user), so that the driver can send any bytes and the backend read whatever arrives.

export interface EchoMsg {
  readonly text: string;
  readonly n: number;
  readonly user: string;
}

function varint(value: number): Buffer {
  const out: number[] = [];
  let v = value >>> 0;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return Buffer.from(out);
}

function stringField(tag: number, value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  return Buffer.concat([Buffer.from([tag]), varint(bytes.length), bytes]);
}

/** Msg as protobuf (n as a non-negative varint). */
export function encodeMsg(m: EchoMsg): Buffer {
  return Buffer.concat([stringField(0x0a, m.text), Buffer.from([0x10]), varint(Math.max(0, m.n)), stringField(0x1a, m.user)]);
}

/** Msg from protobuf, or undefined when the bytes are not one (unknown varint and length fields are skipped). */
export function decodeMsg(bytes: Buffer): EchoMsg | undefined {
  const m = { text: '', n: 0, user: '' };
  let at = 0;
  const readVarint = (): number | undefined => {
    let value = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (at >= bytes.length) return undefined;
      const b = bytes[at++]!;
      value += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return value;
    }
    return undefined;
  };
  while (at < bytes.length) {
    const key = readVarint();
    if (key === undefined) return undefined;
    const field = Math.floor(key / 8);
    const type = key & 7;
    if (type === 0) {
      const v = readVarint();
      if (v === undefined) return undefined;
      if (field === 2) m.n = v;
    } else if (type === 2) {
      const length = readVarint();
      if (length === undefined || at + length > bytes.length) return undefined;
      const text = bytes.toString('utf8', at, at + length);
      at += length;
      if (field === 1) m.text = text;
      else if (field === 3) m.user = text;
    } else return undefined;
  }
  return m;
}

/** One length-prefixed message (not compressed). */
export function grpcFrame(message: Buffer, compressedFlag = 0, declaredLength = message.length): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = compressedFlag;
  prefix.writeUInt32BE(declaredLength >>> 0, 1);
  return Buffer.concat([prefix, message]);
}
