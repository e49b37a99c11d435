"""The web UI (`WebUI.Enabled`): jobs and nodes in a browser, served by `bacalhau serve` from this
package alone. It is a client of the public /api/v1 API, like the CLI; README.md here draws the flow."""
