import { escapeHtml, formatDuration, html, preview, SafeHtml } from './html';

// An alias, so the formatter leaves these templates exactly as written.
const markup = html;

describe('dashboard html', () => {
  it('escapes every interpolated value, in text and attributes', () => {
    const id = `x"><img src=x onerror=alert(1)>'&`;
    const escaped = 'x&quot;&gt;&lt;img src=x onerror=alert(1)&gt;&#39;&amp;';
    const out = markup`<a href="/runs/${id}" title='${id}'>${id}</a>`.value;
    expect(out).toBe(`<a href="/runs/${escaped}" title='${escaped}'>${escaped}</a>`);
    expect(escapeHtml('<script>')).toBe('&lt;script&gt;');
  });

  it('keeps nested templates and joins arrays; drops null, undefined and false', () => {
    const items = ['<a>', 'b'].map((item) => markup`<li>${item}</li>`);
    expect(markup`<ul>${items}${null}${undefined}${false}</ul>`.value).toBe(
      '<ul><li>&lt;a&gt;</li><li>b</li></ul>',
    );
    expect(markup`${new SafeHtml('<br>')}`.value).toBe('<br>');
  });

  it('formats durations and clips previews', () => {
    expect([formatDuration(850), formatDuration(12_340), formatDuration(245_000)]).toEqual([
      '850 ms',
      '12.3 s',
      '4 min 5 s',
    ]);
    expect(preview({ a: 'x'.repeat(50) }, 20)).toBe(`{\n  "a": "xxxxxxxxxx\n… (43 more characters)`);
    expect(preview(undefined)).toBe('');
  });
});
