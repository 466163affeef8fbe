from tests.factories import build_user
def test_smoke(okta):
    r = okta.post("/scim/v2/Users", json=build_user())
    assert r.status_code == 201, r.text
    r2 = okta.get("/scim/v2/Users", params={"filter": f'userName eq "{r.json()["userName"].upper()}"'})
    assert r2.json()["totalResults"] == 1
