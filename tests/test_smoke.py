def test_admin_creates_and_verifies(admin):
    issued = admin.create_key("first")
    assert admin.verify(issued.secret).code == "VALID"
