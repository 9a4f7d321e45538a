/**
 * A small, strict XML reader for STS answers (awsQuery: a few nested elements holding text). It builds
 * a tree of elements and their text, decodes the five predefined entities and character references,
 * and refuses everything an STS answer never contains but a hostile or confused upstream might send: a
 * DOCTYPE (so no entity can be defined, let alone expanded), processing instructions after the
 * declaration, unknown entities, mismatched or unclosed tags (a truncated body), more than one root,
 * and documents, depths or element counts past fixed limits. Attributes are checked for syntax and
 * dropped: nothing read from STS lives in one. Names keep no namespace prefix.
 */

export interface XmlElement {
  /** The local name: any `prefix:` removed. */
  name: string;
  children: XmlElement[];
  /** The element's own text (CDATA included), entities decoded; the children's text is theirs. */
  text: string;
}

export interface XmlLimits {
  maxChars: number;
  maxDepth: number;
  maxElements: number;
}

/** Far above any STS answer (a few KiB), far below anything that could cost real time or memory. */
export const DEFAULT_XML_LIMITS: XmlLimits = { maxChars: 256 * 1024, maxDepth: 32, maxElements: 2000 };

export class XmlError extends Error {
  override readonly name = 'XmlError';
}

const NAME = /[A-Za-z_][\w.-]*(?::[A-Za-z_][\w.-]*)?/y;
const SPACE = /[ \t\r\n]*/y;
const ATTRIBUTE = /[ \t\r\n]+[A-Za-z_][\w.-]*(?::[A-Za-z_][\w.-]*)?[ \t\r\n]*=[ \t\r\n]*(?:"[^"<]*"|'[^'<]*')/y;
const DECLARATION = /<\?xml[ \t\r\n][^?]*\?>/y;
const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function isXmlChar(cp: number): boolean {
  return (
    cp === 0x9 ||
    cp === 0xa ||
    cp === 0xd ||
    (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) ||
    (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

/** Character data with its references decoded; a bare `&` or an unknown entity is an error. */
function decodeText(raw: string, at: number): string {
  if (!raw.includes('&')) return raw;
  return raw.replace(/&([^;&]{0,10});?/g, (match, ref: string, offset: number) => {
    if (!match.endsWith(';')) throw new XmlError(`malformed XML at offset ${at + offset}: '&' that starts no reference`);
    const named = PREDEFINED[ref];
    if (named !== undefined) return named;
    const m = /^#(?:x([0-9A-Fa-f]{1,6})|([0-9]{1,7}))$/.exec(ref);
    const cp = m ? Number.parseInt(m[1] ?? m[2] ?? '', m[1] !== undefined ? 16 : 10) : Number.NaN;
    if (!m || !isXmlChar(cp))
      throw new XmlError(`malformed XML at offset ${at + offset}: unknown or invalid reference &${ref.slice(0, 10)};`);
    return String.fromCodePoint(cp);
  });
}

class Reader {
  #pos = 0;
  #elements = 0;

  constructor(
    private readonly s: string,
    private readonly limits: XmlLimits,
  ) {}

  fail(reason: string): never {
    throw new XmlError(`malformed XML at offset ${this.#pos}: ${reason}`);
  }

  #match(re: RegExp): string | undefined {
    re.lastIndex = this.#pos;
    const m = re.exec(this.s);
    if (!m) return undefined;
    this.#pos += m[0].length;
    return m[0];
  }

  #startsWith(token: string): boolean {
    return this.s.startsWith(token, this.#pos);
  }

  /** Comments and whitespace between elements, where nothing else may stand. */
  #skipMisc(): void {
    for (;;) {
      this.#match(SPACE);
      if (!this.#startsWith('<!--')) return;
      this.#skipComment();
    }
  }

  #skipComment(): void {
    const end = this.s.indexOf('-->', this.#pos + 4);
    if (end < 0) this.fail('unterminated comment');
    this.#pos = end + 3;
  }

  document(): XmlElement {
    if (this.#startsWith('\uFEFF')) this.#pos++;
    this.#match(DECLARATION);
    this.#skipMisc();
    if (this.#startsWith('<!')) this.fail('a DOCTYPE or declaration is not accepted');
    if (!this.#startsWith('<') || this.#startsWith('<?') || this.#startsWith('</')) this.fail('expected the root element');
    const root = this.#element(1);
    this.#skipMisc();
    if (this.#pos < this.s.length) this.fail('content after the root element');
    return root;
  }

  #element(depth: number): XmlElement {
    if (depth > this.limits.maxDepth) this.fail(`elements nested deeper than ${this.limits.maxDepth}`);
    if (++this.#elements > this.limits.maxElements) this.fail(`more than ${this.limits.maxElements} elements`);
    this.#pos++; // '<'
    const qname = this.#match(NAME) ?? this.fail('expected an element name');
    while (this.#match(ATTRIBUTE) !== undefined) {
      // checked and dropped
    }
    this.#match(SPACE);
    const el: XmlElement = { name: qname.slice(qname.indexOf(':') + 1), children: [], text: '' };
    if (this.#startsWith('/>')) {
      this.#pos += 2;
      return el;
    }
    if (!this.#startsWith('>')) this.fail(`malformed start tag of element ${qname}`);
    this.#pos++;
    const text: string[] = [];
    for (;;) {
      const lt = this.s.indexOf('<', this.#pos);
      if (lt < 0) {
        this.#pos = this.s.length;
        this.fail(`element ${qname} is not closed (truncated?)`);
      }
      if (lt > this.#pos) {
        const raw = this.s.slice(this.#pos, lt);
        if (raw.includes(']]>')) this.fail("']]>' in character data");
        text.push(decodeText(raw, this.#pos));
        this.#pos = lt;
      }
      if (this.#startsWith('</')) {
        this.#pos += 2;
        const closing = this.#match(NAME);
        if (closing !== qname) this.fail(`the end tag of ${closing ?? '(no name)'} closes element ${qname}`);
        this.#match(SPACE);
        if (!this.#startsWith('>')) this.fail(`malformed end tag of element ${qname}`);
        this.#pos++;
        el.text = text.join('');
        return el;
      }
      if (this.#startsWith('<!--')) this.#skipComment();
      else if (this.#startsWith('<![CDATA[')) {
        const end = this.s.indexOf(']]>', this.#pos + 9);
        if (end < 0) this.fail('unterminated CDATA section');
        text.push(this.s.slice(this.#pos + 9, end));
        this.#pos = end + 3;
      } else if (this.#startsWith('<!') || this.#startsWith('<?')) this.fail('a declaration or processing instruction inside the document');
      else el.children.push(this.#element(depth + 1));
    }
  }
}

/** Reads one XML document; throws XmlError, with the offset and the reason, for anything malformed. */
export function readXml(text: string, limits: XmlLimits = DEFAULT_XML_LIMITS): XmlElement {
  if (text.length > limits.maxChars) {
    throw new XmlError(`XML document of ${text.length} characters is over the ${limits.maxChars}-character limit`);
  }
  let offset = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    if (!isXmlChar(cp)) {
      throw new XmlError(`malformed XML at offset ${offset}: character U+${cp.toString(16).toUpperCase().padStart(4, '0')} is not allowed`);
    }
    offset += ch.length;
  }
  return new Reader(text, limits).document();
}

/** The first child called `name`, if any. */
export function child(el: XmlElement | undefined, name: string): XmlElement | undefined {
  return el?.children.find((c) => c.name === name);
}

/** The text of the element at `path` below `el` (trimmed), or undefined when any step is missing. */
export function textAt(el: XmlElement | undefined, ...path: string[]): string | undefined {
  let at = el;
  for (const name of path) at = child(at, name);
  return at === undefined ? undefined : at.text.trim();
}
