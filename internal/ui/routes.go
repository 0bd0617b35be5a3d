package ui

import "net/http"

func (u *UI) routes() {
	m := u.mux
	m.Handle("GET /{$}", u.page(u.home))
	m.HandleFunc("GET /login", u.loginForm)
	m.HandleFunc("POST /login", u.login)
	m.Handle("POST /logout", u.page(u.logout))
	m.Handle("POST /logout/all", u.page(u.logoutAll))

	m.Handle("GET /projects", u.page(u.projects))
	m.Handle("POST /projects", u.page(u.createProject))
	m.Handle("GET /projects/{project}", u.page(u.project))
	m.Handle("POST /projects/{project}/delete", u.page(u.deleteProject))
	m.Handle("GET /projects/{project}/members", u.page(u.members))
	m.Handle("POST /projects/{project}/members", u.page(u.setMember))
	m.Handle("POST /projects/{project}/members/remove", u.page(u.removeMember))
	m.Handle("GET /projects/{project}/robots", u.page(u.robots))
	m.Handle("POST /projects/{project}/robots", u.page(u.createRobot))
	m.Handle("POST /projects/{project}/robots/delete", u.page(u.deleteRobot))
	m.Handle("GET /projects/{project}/settings", u.page(u.settings))
	m.Handle("POST /projects/{project}/settings", u.page(u.updateProject))
	m.Handle("POST /projects/{project}/quota", u.page(u.setQuota))
	m.Handle("POST /projects/{project}/retention", u.page(u.setRetention))
	m.Handle("POST /projects/{project}/retention/run", u.page(u.runRetention))
	m.Handle("POST /projects/{project}/scan-policy", u.page(u.setScanPolicy))
	m.Handle("POST /projects/{project}/immutable", u.page(u.addImmutable))
	m.Handle("POST /projects/{project}/immutable/delete", u.page(u.deleteImmutable))

	m.Handle("GET /search", u.page(u.search))
	m.Handle("GET /r/{ref...}", u.page(u.repository))
	m.Handle("POST /tags/delete", u.page(u.deleteTag))
	m.Handle("POST /manifests/delete", u.page(u.deleteManifest))

	m.Handle("GET /admin/users", u.page(u.users))
	m.Handle("POST /admin/users", u.page(u.createUser))
	m.Handle("POST /admin/users/{user}", u.page(u.updateUser))
	m.Handle("POST /admin/users/{user}/delete", u.page(u.deleteUser))
	m.Handle("GET /audit", u.page(u.audit))
	m.Handle("GET /account", u.page(u.account))
	m.Handle("POST /account/cli-secret", u.page(u.rotateCLISecret))
	m.Handle("GET /mirror", u.page(u.mirror))
	m.Handle("GET /system", u.page(u.system))
	m.Handle("POST /system/policies", u.page(u.setTrustPolicy))
	m.Handle("POST /mirror/warm", u.page(u.warm))

	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		u.render(w, r, nil, http.StatusNotFound, "error", map[string]any{"Status": 404, "StatusText": "Not Found", "Message": "no such page"})
	})
}
