import { Type, type Static } from '@sinclair/typebox';
import { ObjectMeta } from './common.js';

/** A core/v1 Secret as read from YAML in local mode (`data` base64, `stringData` plain). */
export const Secret = Type.Object(
  {
    apiVersion: Type.Literal('v1'),
    kind: Type.Literal('Secret'),
    metadata: ObjectMeta,
    type: Type.Optional(Type.String()),
    data: Type.Optional(Type.Record(Type.String(), Type.String({ contentEncoding: 'base64' }))),
    stringData: Type.Optional(Type.Record(Type.String(), Type.String())),
  },
  { additionalProperties: true },
);
export type Secret = Static<typeof Secret>;

/** The decoded key → value pairs of a Secret (`stringData` wins over `data`, as the API server does). */
export function secretValues(secret: Secret): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(secret.data ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
  for (const [k, v] of Object.entries(secret.stringData ?? {})) out[k] = v;
  return out;
}
