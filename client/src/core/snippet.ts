/**
 * The snippet a site pastes into its pages (inside a `<script>` element, in `<head>`): it defines a
 * stub `window.analytics` that records calls as `[method, ...args]` while the tag loads, loads the
 * tag from `{{host}}/tag/<writeKey>.js` and records the first `page()` call. Like Segment's
 * snippet 5.x it adds a page-context argument `{__t:'bpc', c, p, u, s, t, r}` (canonical URL, path,
 * URL, search, title, referrer when the call was made), plus `d`, the call's time (ISO 8601), which
 * becomes the event's `timestamp` to every event call, and forwards calls to
 * the real object once the tag has replaced the stub (`analytics.initialized`).
 * `{{host}}` (scheme and host of the ingestion API, no trailing slash) and `{{writeKey}}` are
 * placeholders; {@link snippet} fills them.
 */
export const SNIPPET =
  '!function(){var w=window,a=w.analytics=w.analytics||[];if(!a.initialize)if(a.invoked)w.console&&console.error&&console.error("Switchyard snippet included twice.");else{a.invoked=!0;' +
  'a.methods=["page","track","identify","group","alias","screen","reset","ready","setAnonymousId","trackLink","trackForm","setConsent"];' +
  'a.factory=function(m){return function(){if(w.analytics.initialized)return w.analytics[m].apply(w.analytics,arguments);var r=Array.prototype.slice.call(arguments);' +
  'if(["track","screen","alias","group","page","identify"].indexOf(m)>-1){var c=document.querySelector("link[rel=\'canonical\']");r.push({__t:"bpc",c:c&&c.getAttribute("href")||void 0,p:location.pathname,u:location.href,s:location.search,t:document.title,r:document.referrer,d:(new Date).toISOString()})}' +
  'r.unshift(m);a.push(r);return a}};' +
  'for(var i=0;i<a.methods.length;i++){var k=a.methods[i];a[k]=a.factory(k)}' +
  'a.load=function(key,o){var t=document.createElement("script");t.async=!0;t.src="{{host}}/tag/"+encodeURIComponent(key)+".js";var f=document.getElementsByTagName("script")[0];f?f.parentNode.insertBefore(t,f):document.head.appendChild(t);a._writeKey=key;a._loadOptions=o};' +
  'a.load("{{writeKey}}");a.page()}}();';

/** `text` as the inside of a JS double-quoted string that is safe within an HTML `<script>` element. */
function jsStringContent(text: string): string {
  return JSON.stringify(text)
    .slice(1, -1)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/**
 * {@link SNIPPET} for one Source: JavaScript to put inside a `<script>` element.
 * @param host the ingestion API's base URL as pages reach it, e.g. `https://collect.example.com`
 * (trailing slashes are dropped).
 * @param writeKey the Source's write key.
 */
export function snippet(host: string, writeKey: string): string {
  // Functions as replacements: a `$` in the values must stay literal.
  return SNIPPET.replace('{{host}}', () => jsStringContent(host.replace(/\/+$/, ''))).replace('{{writeKey}}', () => jsStringContent(writeKey));
}
