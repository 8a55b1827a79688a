// The API reference's configuration: Swagger UI renders the gateway's
// own OpenAPI document.  Kept out of index.html so that the page's
// Content-Security-Policy (conf/crm.conf) needs no inline script.
window.addEventListener("load", function () {
    window.ui = SwaggerUIBundle({
        url: "/openapi.json",
        dom_id: "#swagger-ui",
        deepLinking: true,
        displayOperationId: true,
        presets: [SwaggerUIBundle.presets.apis],
        layout: "BaseLayout",
        // never send the document to an outside validator
        validatorUrl: null
    });
});
