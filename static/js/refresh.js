// While an upload is pending, reload every two seconds until it is routed.
setTimeout(function () { window.location.reload(); }, 2000);
