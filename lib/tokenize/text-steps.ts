// What a tokenizer.json does to a text before splitting it, as plain data (it travels to the tokenizer workers
// and into the table cache): lone surrogates made U+FFFD, its normalizers (NFC, Prepend, Replace) and the
// prefix its pre-tokenizer adds (ByteLevel add_prefix_space, Metaspace's prepend_scheme), applied in order.

/** ES2024's well-formed string methods (Node 20 has them; the compiler's ES2023 library does not). */
type WellFormed = { isWellFormed(): boolean; toWellFormed(): string };

export type TextStep =
  /** Each lone surrogate becomes U+FFFD, as the Hugging Face binding's text (a Rust String) has it. */
  | { type: 'wellFormed' }
  | { type: 'nfc' }
  /** Puts `text` in front of a non-empty text (the Prepend normalizer). */
  | { type: 'prepend'; text: string }
  /** Puts `text` in front of a non-empty text unless it starts with it already (ByteLevel, Metaspace). */
  | { type: 'prefix'; text: string }
  | { type: 'replace'; from: string; to: string };

export function applyTextSteps(steps: readonly TextStep[]): ((text: string) => string) | undefined {
  if (steps.length === 0) return undefined;
  return (text) => {
    let out = text;
    for (const step of steps) {
      if (step.type === 'wellFormed') {
        if (!(out as unknown as WellFormed).isWellFormed())
          out = (out as unknown as WellFormed).toWellFormed();
      } else if (step.type === 'nfc') out = out.normalize('NFC');
      else if (step.type === 'prepend') out = out === '' ? out : step.text + out;
      else if (step.type === 'prefix') out = out === '' || out.startsWith(step.text) ? out : step.text + out;
      else out = out.replaceAll(step.from, step.to);
    }
    return out;
  };
}
