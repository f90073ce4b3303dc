// The special tokens a run puts around each document, resolved (BOS as the model or --bos/--no-bos says, EOS
// unless --no-eos, --eos-token's instead of the model's), for the pack and run summaries.
import { documentBosId, type TokenizerFacts } from './encoders.js';

export interface SpecialToken {
  token: string;
  id: number;
}

/** null: none is written. */
export interface DocumentTokens {
  bos: SpecialToken | null;
  eos: SpecialToken | null;
}

export function documentTokens(
  facts: TokenizerFacts,
  options: { bos?: boolean; eos: boolean },
): DocumentTokens {
  const bosId = documentBosId(options.bos, facts);
  return {
    bos: bosId === undefined || facts.bosToken === undefined ? null : { token: facts.bosToken, id: bosId },
    eos: options.eos ? { token: facts.eosToken, id: facts.eosId } : null,
  };
}

/** E.g. `BOS <s> (1) before each document, EOS </s> (2) after each document`. */
export function describeDocumentTokens({ bos, eos }: DocumentTokens): string {
  const shown = (token: SpecialToken) => `${JSON.stringify(token.token).slice(1, -1)} (${token.id})`;
  return [
    bos ? `BOS ${shown(bos)} before each document` : 'no BOS',
    eos ? `EOS ${shown(eos)} after each document` : 'no EOS',
  ].join(', ');
}
