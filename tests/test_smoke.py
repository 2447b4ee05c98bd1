from conftest import conversion


def test_conversion_then_contact(api):
    response = api.send_event(conversion("ana@example.com", name="Ana"))
    assert response.status_code == 200
    contact = api.contact("ana@example.com").json()
    assert contact["name"] == "Ana"
