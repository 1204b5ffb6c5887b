//! The built-in templates of the command-line half's pages (`cli_pages`): no imports,
//! so the template loader (`pages`) and the pages can both use them.

/// The device page. Variables: `step` (`enter`, `confirm` or `done`), `user_code`,
/// `error`, `user`, `groups`, `client_host`, `clusters`, `csrf`, `outcome`
/// (`approved` or `denied`), `request_id`, `style`.
pub const DEVICE_TEMPLATE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in a device · Portcullis</title>
<style>{{ style }}</style>
</head>
<body>
<main>
{% if step == "enter" %}
<h1>Sign in a device</h1>
<p>Type the code that <code>portcullis login --device</code> printed.</p>
{% if error %}<p id="error"><strong>{{ error }}</strong></p>{% endif %}
<form method="post" action="/oauth2/device">
<input type="hidden" name="csrf" value="{{ csrf }}">
<input type="hidden" name="step" value="enter">
<p><input id="user-code" name="user_code" value="{{ user_code }}" autocomplete="off" autocapitalize="characters" spellcheck="false" size="10" maxlength="20" aria-label="Code"></p>
<p><button class="button" id="continue">Continue</button></p>
</form>
{% elif step == "confirm" %}
<h1>Sign this device in?</h1>
<p>A command line on <strong id="client-host">{{ client_host or "an unnamed host" }}</strong> asks to act as
<strong id="user">{{ user }}</strong>{% if groups %} (groups: {{ groups | join(", ") }}){% endif %}.</p>
{% if clusters %}<p>It will reach these clusters:</p>
<ul id="clusters">{% for c in clusters %}<li>{{ c }}</li>{% endfor %}</ul>{% endif %}
<p>Only approve if you just ran <code>portcullis login --device</code> yourself and it shows the code <code>{{ user_code }}</code>.</p>
<form method="post" action="/oauth2/device">
<input type="hidden" name="csrf" value="{{ csrf }}">
<input type="hidden" name="step" value="decide">
<button class="button" id="approve" name="decision" value="approve">Approve</button>
<button id="deny" name="decision" value="deny">Deny</button>
</form>
{% else %}
<h1 id="outcome">{% if outcome == "approved" %}Device signed in{% else %}Sign-in denied{% endif %}</h1>
<p>You can close this page and go back to your terminal.</p>
{% endif %}
<p><small>Request id: <code id="request-id">{{ request_id }}</code></small></p>
</main>
</body>
</html>
"#;

/// The kubeconfig page. Variables: `user`, `groups`, `server` (this Portcullis),
/// `clusters` (each `name`, `server`, `description`), `request_id`, `style`.
pub const KUBECONFIG_TEMPLATE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kubectl access · Portcullis</title>
<style>{{ style }}</style>
</head>
<body>
<main>
<h1>kubectl access</h1>
<p>Signed in as <strong id="user">{{ user }}</strong>{% if groups %} (groups: {{ groups | join(", ") }}){% endif %}.</p>
{% if clusters %}
<p>Your clusters:</p>
<ul id="clusters">{% for c in clusters %}<li><code>{{ c.name }}</code>{% if c.description %}: {{ c.description }}{% endif %} <small>({{ c.server }})</small></li>{% endfor %}</ul>
<p>With the <code>portcullis</code> binary on your <code>PATH</code> (the same program as this server), run:</p>
<pre id="commands"><code>portcullis login --server {{ server }}
kubectl --context {{ clusters[0].name }} get pods</code></pre>
<p>On a machine without a browser (SSH): <code>portcullis login --device --server {{ server }}</code>.
To end the command-line session: <code>portcullis logout --server {{ server }}</code>.</p>
<p><a class="button" id="download" href="/oauth2/kubeconfig?download=1">Download a kubeconfig</a></p>
<p><small>It holds no token: each cluster's <code>exec</code> entry runs <code>portcullis kubectl-credential</code>, which signs in through this server.</small></p>
{% else %}
<p id="clusters">No cluster is configured for you.</p>
{% endif %}
<p><small>Request id: <code id="request-id">{{ request_id }}</code></small></p>
</main>
</body>
</html>
"#;

/// The templates of this module, by file name.
pub const TEMPLATES: [(&str, &str); 2] = [
    ("device.html", DEVICE_TEMPLATE),
    ("kubeconfig.html", KUBECONFIG_TEMPLATE),
];
