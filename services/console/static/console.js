// The console's only script: re-renders live sections (data-refresh) from the server every few
// seconds. Pages work without it; it runs no markup of its own (the server escapes everything).
'use strict';
document.addEventListener('DOMContentLoaded', () => {
  for (const el of document.querySelectorAll('[data-refresh]')) {
    const url = el.getAttribute('data-refresh');
    const every = Number(el.getAttribute('data-every')) || 2000;
    let busy = false;
    setInterval(async () => {
      if (busy || document.hidden) return;
      busy = true;
      try {
        const res = await fetch(url, { credentials: 'same-origin', headers: { accept: 'text/html' } });
        if (res.status === 401) return window.location.assign('/login');
        // keep the keyboard focus where it was: replace only when focus is not inside the section
        if (res.ok && !el.contains(document.activeElement)) el.innerHTML = await res.text();
      } catch {
        // the next tick tries again
      } finally {
        busy = false;
      }
    }, every);
  }
});
