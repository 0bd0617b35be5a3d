// Copy buttons: <button class="copy" data-copy="text">. No inline script anywhere (the
// Content-Security-Policy forbids it), so behaviour is attached here.
document.addEventListener('click', function (ev) {
  var b = ev.target.closest('button.copy');
  if (!b) return;
  var text = b.getAttribute('data-copy');
  var done = function () { var t = b.textContent; b.textContent = 'Copied'; setTimeout(function () { b.textContent = t; }, 1500); };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, function () { select(b); });
  } else {
    select(b);
  }
});

// Without the clipboard API (plain HTTP is not a secure context), select the text so
// Ctrl+C copies it.
function select(b) {
  var code = b.parentElement.querySelector('code');
  if (!code) return;
  var r = document.createRange();
  r.selectNodeContents(code);
  var s = window.getSelection();
  s.removeAllRanges();
  s.addRange(r);
}
