// Bounds checked before the pre-screen parses anything: size, line length and bracket nesting.
// Pure, linear, no recursion: they run on the caller's event loop on hostile input.

export interface BoundHit {
  rule: 'prescreen_too_large' | 'prescreen_too_deep' | 'prescreen_line_too_long';
  message: string;
  /** Offset in the code where the bound was crossed, when there is one. */
  offset?: number;
}

export interface Bounds {
  maxBytes: number;
  maxDepth: number;
  /** 0: no limit. */
  maxLineLength: number;
}

/** The first bound the code crosses, or undefined. Cheapest checks first. */
export function checkBounds(code: string, bounds: Bounds): BoundHit | undefined {
  // UTF-8 is at most 3 bytes per UTF-16 unit: short code needs no exact count.
  if (code.length * 3 > bounds.maxBytes) {
    const bytes = Buffer.byteLength(code, 'utf8');
    if (bytes > bounds.maxBytes) {
      return {
        rule: 'prescreen_too_large',
        message: `code is ${bytes} bytes; the pre-screen accepts at most ${bounds.maxBytes}`,
      };
    }
  }
  if (bounds.maxLineLength > 0) {
    let lineStart = 0;
    while (lineStart <= code.length) {
      let lineEnd = code.indexOf('\n', lineStart);
      if (lineEnd === -1) lineEnd = code.length;
      if (lineEnd - lineStart > bounds.maxLineLength) {
        return {
          rule: 'prescreen_line_too_long',
          message: `a line is ${lineEnd - lineStart} characters long; the pre-screen accepts at most ${bounds.maxLineLength}`,
          offset: lineStart,
        };
      }
      lineStart = lineEnd + 1;
    }
  }
  const deep = findDeepNesting(code, bounds.maxDepth);
  if (deep !== undefined) {
    return {
      rule: 'prescreen_too_deep',
      message: `brackets are nested more than ${bounds.maxDepth} levels deep`,
      offset: deep,
    };
  }
  return undefined;
}

const REGEX_AFTER_CHAR = new Set('(,=:[!&|?{};~+-*%<>^'.split(''));
const REGEX_AFTER_WORD = new Set([
  'return', 'typeof', 'case', 'do', 'else', 'in', 'of', 'new', 'delete', 'void', 'throw', 'yield', 'await',
  'instanceof',
]);

/**
 * The offset of the first bracket opened beyond maxDepth, skipping strings, comments, template
 * text and regular expressions. `${` inside a template counts as a bracket. Regex detection uses
 * the usual previous-token heuristic; a wrong guess only shifts the count, and the parser's own
 * stack check stays as the backstop.
 */
export function findDeepNesting(code: string, maxDepth: number): number | undefined {
  // One entry per open bracket: true when it is a template's `${`, so its `}` resumes the template.
  const open: boolean[] = [];
  let previous = ''; // last significant character, '' at the start
  let previousWord = '';
  let i = 0;
  const n = code.length;

  const skipTemplateText = (): void => {
    // i is just past a backtick or a `}` closing `${`; stops past the closing backtick or `${`.
    while (i < n) {
      const c = code[i];
      if (c === '\\') {
        i += 2;
      } else if (c === '`') {
        i++;
        previous = '`';
        return;
      } else if (c === '$' && code[i + 1] === '{') {
        i += 2;
        open.push(true);
        previous = '{';
        return;
      } else {
        i++;
      }
    }
  };

  while (i < n) {
    const c = code[i] as string;
    if (c === ' ' || c === '\n' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (c === '/' && code[i + 1] === '/') {
      const end = code.indexOf('\n', i);
      i = end === -1 ? n : end;
      continue;
    }
    if (c === '/' && code[i + 1] === '*') {
      const end = code.indexOf('*/', i + 2);
      i = end === -1 ? n : end + 2;
      continue;
    }
    if (c === '/' && (previous === '' || REGEX_AFTER_CHAR.has(previous) || REGEX_AFTER_WORD.has(previousWord))) {
      i = skipRegex(code, i);
      previous = 'r';
      previousWord = '';
      continue;
    }
    if (c === '"' || c === "'") {
      i = skipQuoted(code, i, c);
      previous = 's';
      previousWord = '';
      continue;
    }
    if (c === '`') {
      i++;
      skipTemplateText();
      previousWord = '';
      if (open.length > maxDepth) return i - 2;
      continue;
    }
    if (c === '(' || c === '[' || c === '{') {
      open.push(false);
      if (open.length > maxDepth) return i;
    } else if (c === ')' || c === ']' || c === '}') {
      const wasTemplate = open.pop();
      if (c === '}' && wasTemplate === true) {
        i++;
        skipTemplateText();
        previousWord = '';
        if (open.length > maxDepth) return i - 2;
        continue;
      }
    }
    if (isWordChar(c)) {
      const start = i;
      while (i < n && isWordChar(code[i] as string)) i++;
      previousWord = code.slice(start, i);
      previous = 'w';
      continue;
    }
    previous = c;
    previousWord = '';
    i++;
  }
  return undefined;
}

function isWordChar(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c === '_' || c === '$';
}

function skipQuoted(code: string, start: number, quote: string): number {
  let i = start + 1;
  while (i < code.length) {
    const c = code[i];
    if (c === '\\') i += 2;
    else if (c === quote || c === '\n') return i + 1;
    else i++;
  }
  return i;
}

function skipRegex(code: string, start: number): number {
  let i = start + 1;
  let inClass = false;
  while (i < code.length) {
    const c = code[i];
    if (c === '\\') i += 2;
    else if (c === '\n') return i;
    else if (c === '[') (inClass = true), i++;
    else if (c === ']') (inClass = false), i++;
    else if (c === '/' && !inClass) return i + 1;
    else i++;
  }
  return i;
}
