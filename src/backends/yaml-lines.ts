// backends/yaml-lines: where in a YAML document `toJS()` gave up, for located errors (architecture rule 5).
// Shared by the services-file parser and the config loader (config/ already imports backends/).

import { visit, type Document, type LineCounter } from 'yaml';

/** Line of the first alias that resolves to nothing (else of the first alias): where toJS() gave up. */
export function aliasLine(doc: Document, lines: LineCounter): number | undefined {
  let first: number | undefined;
  let unresolved: number | undefined;
  visit(doc, {
    Alias(_, node) {
      const line = node.range ? lines.linePos(node.range[0]).line : undefined;
      first ??= line;
      if (node.resolve(doc) === undefined) {
        unresolved = line;
        return visit.BREAK;
      }
      return undefined;
    },
  });
  return unresolved ?? first;
}
