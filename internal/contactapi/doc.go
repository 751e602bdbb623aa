// Package contactapi is an in-memory stand-in for the platform's contact API:
// it responds to Update Contact requests as the vendor documents them, stores
// contacts with contact.State, and records what it received so that tests
// can check what the worker sent.
//
// The documented endpoint is
//
//	PUT /contact/{contact_id}/
//	Authorization: Bearer <token>
//	Content-Type: application/json
//
//	{"name": "...", "email": "...", "dynamic_field_list": [{"key": "...", "value": ...}], ...}
//
// with these responses, each an application/json object:
//
//   - 200 {"detail": "Contact updated successfully"} when the update is stored.
//   - 400 {"detail": "Contact (<contact_id>) not found"} when the contact does
//     not exist or contact_id is not a UUID. The API returns 400, not 404.
//   - 400 {"detail": ["<message>"]} when the body is not a valid partial
//     update, or sets an email that another contact holds while
//     Options.UniqueEmail is on.
//   - 401 {"detail": "Invalid token."} when a token is configured and the
//     request does not carry it.
//   - 415 {"detail": "Unsupported media type."} when Content-Type is not
//     application/json.
//   - 404 {"detail": "Not found."} for any other path, and 405 for another
//     method on the contact path.
//
// A Server is an http.Handler. Tests inject faults with SetFault and read
// Stats, Requests and MaxPerWindow; Listen serves on a TCP address for the
// demo command and for tests that need a real connection. Every method of
// Server is safe for concurrent use.
package contactapi
