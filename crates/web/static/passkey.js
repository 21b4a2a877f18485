// Rekey's only script: runs one WebAuthn ceremony for a server-rendered page and posts the answer.
// Contract: #passkey-options (JSON: webauthn-rs's options, binary fields base64url), #passkey-form
// (data-mode="create" or "get", a hidden input name="credential"), #passkey-start (a button),
// #passkey-error and #passkey-unsupported (hidden paragraphs; #passkey-error may carry
// data-cancelled, data-exists and data-failed texts in the page's language).
// Runs under script-src 'self': no inline code, no code or HTML made from strings.
(function () {
  'use strict';

  var form = document.getElementById('passkey-form');
  var start = document.getElementById('passkey-start');
  var source = document.getElementById('passkey-options');
  var error = document.getElementById('passkey-error');
  if (!form || !start || !source) {
    return;
  }
  if (!window.PublicKeyCredential || !navigator.credentials) {
    var unsupported = document.getElementById('passkey-unsupported');
    if (unsupported) {
      unsupported.hidden = false;
    }
    start.disabled = true;
    return;
  }

  function toBuffer(text) {
    var base64 = text.replace(/-/g, '+').replace(/_/g, '/');
    while (base64.length % 4) {
      base64 += '=';
    }
    var raw = atob(base64);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) {
      bytes[i] = raw.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function toText(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = '';
    for (var i = 0; i < bytes.length; i++) {
      raw += String.fromCharCode(bytes[i]);
    }
    return btoa(raw).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function withBuffers(list) {
    return (list || []).map(function (descriptor) {
      return Object.assign({}, descriptor, { id: toBuffer(descriptor.id) });
    });
  }

  function encode(credential, creating) {
    var r = credential.response;
    var response = creating
      ? {
          attestationObject: toText(r.attestationObject),
          clientDataJSON: toText(r.clientDataJSON),
          transports: typeof r.getTransports === 'function' ? r.getTransports() : [],
        }
      : {
          authenticatorData: toText(r.authenticatorData),
          clientDataJSON: toText(r.clientDataJSON),
          signature: toText(r.signature),
          userHandle: r.userHandle && r.userHandle.byteLength ? toText(r.userHandle) : null,
        };
    return {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      response: response,
      extensions: {},
    };
  }

  function message(name, creating) {
    var texts = (error && error.dataset) || {};
    if (name === 'NotAllowedError' || name === 'AbortError') {
      return texts.cancelled || 'The passkey request was cancelled or timed out. Please try again.';
    }
    if (name === 'InvalidStateError' && creating) {
      return texts.exists || 'This device already holds a passkey for your account.';
    }
    return (texts.failed || 'The passkey could not be used.') + ' (' + name + ')';
  }

  async function run() {
    var creating = form.dataset.mode === 'create';
    start.disabled = true;
    if (error) {
      error.hidden = true;
    }
    try {
      // Parsed anew each time: a retry must not reuse buffers of the last attempt.
      var publicKey = JSON.parse(source.textContent).publicKey;
      publicKey.challenge = toBuffer(publicKey.challenge);
      var credential;
      if (creating) {
        publicKey.user.id = toBuffer(publicKey.user.id);
        publicKey.excludeCredentials = withBuffers(publicKey.excludeCredentials);
        credential = await navigator.credentials.create({ publicKey: publicKey });
      } else {
        publicKey.allowCredentials = withBuffers(publicKey.allowCredentials);
        credential = await navigator.credentials.get({ publicKey: publicKey });
      }
      if (!credential) {
        throw { name: 'NotAllowedError' };
      }
      form.querySelector('input[name="credential"]').value = JSON.stringify(encode(credential, creating));
      form.submit();
    } catch (e) {
      var name = String((e && e.name) || 'Error').replace(/[^A-Za-z]/g, '').slice(0, 40);
      if (error) {
        error.textContent = message(name || 'Error', creating);
        error.hidden = false;
      }
      start.disabled = false;
    }
  }

  start.addEventListener('click', run);
})();
